import { Fragment } from "react";

/**
 * A run's, attempt's or step's state as the API says it ("SUCCEEDED_WITH_FAILURES"), coloured by
 * the `.state-{STATE}` rules in styles.css; a long state may wrap after an underscore.
 */
export function StateText({ state, className = "" }: { state: string; className?: string }) {
  const parts = state.split("_");
  return (
    <span className={`state state-${state}${className ? ` ${className}` : ""}`}>
      {parts.map((part, i) => (
        <Fragment key={i}>
          {i > 0 && (
            <>
              _<wbr />
            </>
          )}
          {part}
        </Fragment>
      ))}
    </span>
  );
}
