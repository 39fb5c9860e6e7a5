import { type ReactNode, useId } from "react";

interface Props {
  label: string;
  error?: string;
  hint?: ReactNode;
  /** Marks the label with an asterisk (the control says it is required itself: `required`). */
  required?: boolean;
  children: (props: { id: string; "aria-invalid"?: true; "aria-describedby"?: string }) => ReactNode;
}

/** A labelled control with its error (tied by aria-describedby, first) and an optional hint. */
export function Field({ label, error, hint, required, children }: Props) {
  const id = useId();
  const errorId = `${id}-error`;
  const hintId = `${id}-hint`;
  const described = [error ? errorId : null, hint ? hintId : null].filter(Boolean).join(" ");
  return (
    <div className={error ? "field field-invalid" : "field"}>
      {required ? (
        <span className="label-row">
          <label htmlFor={id}>{label}</label>
          <span className="required-mark" aria-hidden="true">
            *
          </span>
        </span>
      ) : (
        <label htmlFor={id}>{label}</label>
      )}
      {children({
        id,
        ...(error ? { "aria-invalid": true as const } : {}),
        ...(described ? { "aria-describedby": described } : {}),
      })}
      {hint && (
        <div id={hintId} className="hint">
          {hint}
        </div>
      )}
      {error && (
        <div id={errorId} className="field-error">
          {error}
        </div>
      )}
    </div>
  );
}
