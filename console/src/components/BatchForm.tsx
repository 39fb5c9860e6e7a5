import { type FormEvent, useId, useRef, useState } from "react";

import { ApiError, api, call } from "../api/client";
import {
  type BatchBody,
  batchBody,
  batchFieldErrors,
  type BatchSettings,
  checkGrid,
  countInWords,
  type GridDraft,
  initialGrid,
  MAX_PARALLEL,
  MAX_POINTS,
  type ParameterDraft,
  pointCount,
  rangeValues,
} from "../lib/batches";
import type { FieldErrors } from "../lib/form";
import {
  inputKind,
  needInWords,
  offersNone,
  PARAM_KEY,
  type Template,
  type TemplateParameter,
  typeInWords,
  valueText,
} from "../lib/templates";
import { ErrorAlert } from "./ErrorAlert";
import { Field } from "./Field";

export interface BatchCreated {
  batchId: string;
  name: string;
  size: number;
}

/** The fixed value's input, as the job form has it (by the parameter's type). */
function FixedInput({
  parameter: p,
  value,
  props,
  onChange,
}: {
  parameter: TemplateParameter;
  value: string | boolean;
  props: { id: string; "aria-invalid"?: true; "aria-describedby"?: string };
  onChange: (value: string | boolean) => void;
}) {
  const kind = inputKind(p.type);
  const text = typeof value === "string" ? value : "";
  if (kind.element === "checkbox")
    return (
      <select {...props} name={`fixed-${p.name}`} value={value === true ? "true" : "false"} onChange={(e) => onChange(e.target.value === "true")}>
        <option value="true">true</option>
        <option value="false">false</option>
      </select>
    );
  if (kind.element === "select")
    return (
      <select {...props} name={`fixed-${p.name}`} value={text} onChange={(e) => onChange(e.target.value)}>
        {offersNone(p) && <option value="">{p.required ? "Choose…" : "(none)"}</option>}
        {(p.options ?? []).map((o, i) => (
          <option key={i} value={String(i)}>
            {valueText(o)}
          </option>
        ))}
      </select>
    );
  return (
    <input
      {...props}
      name={`fixed-${p.name}`}
      type={kind.type}
      step={kind.step}
      inputMode={kind.inputMode}
      autoComplete="off"
      value={text}
      onChange={(e) => onChange(e.target.value)}
    />
  );
}

/** The from/to/step helper of a number sweep: it writes the values into the list. */
function RangeHelper({
  parameter: p,
  draft,
  set,
}: {
  parameter: TemplateParameter;
  draft: ParameterDraft;
  set: (change: Partial<ParameterDraft>) => void;
}) {
  const [problem, setProblem] = useState<string | null>(null);
  const id = useId();
  const type = p.type === "int" ? "int" : "float";
  const fill = () => {
    const values = rangeValues(type, draft.from, draft.to, draft.step);
    if (typeof values === "string") return setProblem(values);
    setProblem(null);
    set({ list: values.join(", ") });
  };
  const input = (label: string, key: "from" | "to" | "step") => (
    <div className="field">
      <label htmlFor={`${id}-${key}`}>{label}</label>
      <input
        id={`${id}-${key}`}
        type="number"
        step={type === "int" ? "1" : "any"}
        inputMode={type === "int" ? "numeric" : "decimal"}
        className="range-input"
        value={draft[key]}
        onChange={(e) => set({ [key]: e.target.value })}
      />
    </div>
  );
  return (
    <fieldset className="range">
      <legend>
        Fill {p.name}&apos;s values from a range
      </legend>
      <div className="row-inputs">
        {input("From", "from")}
        {input("To", "to")}
        {input("Step", "step")}
        <button type="button" className="field-button" onClick={fill}>
          Fill values
        </button>
      </div>
      {problem && (
        <p className="field-error" role="alert">
          {problem}
        </p>
      )}
    </fieldset>
  );
}

/** One parameter in the grid builder: fixed (one value) or swept (values by its type). */
function GridParameter({
  parameter: p,
  draft,
  error,
  set,
}: {
  parameter: TemplateParameter;
  draft: ParameterDraft;
  error?: string;
  set: (change: Partial<ParameterDraft>) => void;
}) {
  const id = useId();
  const hint = [typeInWords(p), needInWords(p)].join(" · ") + (p.description ? `: ${p.description}` : "");
  const errorId = `${id}-error`;
  const invalid = error ? { "aria-invalid": true as const } : {};
  const described = (own: string) => [error ? errorId : null, own].filter(Boolean).join(" ");
  return (
    <fieldset className={error ? "grid-parameter field-invalid" : "grid-parameter"}>
      <legend>
        <code>{p.name}</code>
        {p.required && (
          <>
            <span className="required-mark" aria-hidden="true">
              {" "}
              *
            </span>
            <span className="visually-hidden"> (required)</span>
          </>
        )}
      </legend>
      <div id={`${id}-hint`} className="hint">
        {hint}
      </div>
      <div className="radios" role="radiogroup" aria-label={`${p.name}: fixed or swept`}>
        <label className="radio">
          <input type="radio" name={`${id}-how`} checked={!draft.sweep} onChange={() => set({ sweep: false })} />
          Fixed value
        </label>
        <label className="radio">
          <input type="radio" name={`${id}-how`} checked={draft.sweep} onChange={() => set({ sweep: true })} />
          Sweep
        </label>
      </div>
      {!draft.sweep && (
        <Field label={`${p.name} value`} error={error} required={p.required}>
          {(props) => <FixedInput parameter={p} value={draft.fixed} props={props} onChange={(fixed) => set({ fixed })} />}
        </Field>
      )}
      {draft.sweep && p.type === "enum" && (
        <fieldset className="choices-inline">
          <legend>{p.name} values</legend>
          {(p.options ?? []).map((o, i) => (
            <label key={i} className="check">
              <input
                type="checkbox"
                {...invalid}
                aria-describedby={described(`${id}-hint`)}
                checked={draft.options[i] === true}
                onChange={(e) => set({ options: (p.options ?? []).map((_, k) => (k === i ? e.target.checked : draft.options[k] === true)) })}
              />
              {valueText(o)}
            </label>
          ))}
        </fieldset>
      )}
      {draft.sweep && p.type === "bool" && (
        <Field label={`${p.name} values`} error={undefined}>
          {(props) => (
            <select {...props} {...invalid} aria-describedby={described(props["aria-describedby"] ?? "")} value={draft.bools} onChange={(e) => set({ bools: e.target.value as ParameterDraft["bools"] })}>
              <option value="both">both: true and false</option>
              <option value="true">true only</option>
              <option value="false">false only</option>
            </select>
          )}
        </Field>
      )}
      {draft.sweep && (p.type === "int" || p.type === "float" || p.type === "string") && (
        <>
          <Field label={`${p.name} values`} hint={`Separated by commas, e.g. ${p.type === "int" ? "5, 10, 20" : p.type === "float" ? "0.1, 0.01, 0.001" : "a, b, c"}`} error={undefined}>
            {(props) => (
              <input
                {...props}
                {...invalid}
                aria-describedby={described(props["aria-describedby"] ?? "")}
                name={`sweep-${p.name}`}
                autoComplete="off"
                value={draft.list}
                onChange={(e) => set({ list: e.target.value })}
              />
            )}
          </Field>
          {p.type !== "string" && <RangeHelper parameter={p} draft={draft} set={set} />}
        </>
      )}
      {draft.sweep && error && (
        <div id={errorId} className="field-error">
          {error}
        </div>
      )}
    </fieldset>
  );
}

/**
 * "Run a batch": the template run once per point of a grid built from its parameters (each fixed
 * or swept, by its type), at most max parallel at a time. The live count refuses more than 1,000
 * points; the server's 422 lands at each parameter.
 */
export function BatchForm({ template, onCreated }: { template: Template; onCreated: (created: BatchCreated) => void }) {
  const parameters = template.parameters ?? [];
  const [grid, setGrid] = useState<GridDraft>(() => initialGrid(parameters));
  const [settings, setSettings] = useState<BatchSettings>({ name: "", mode: "parallel", maxParallel: "10" });
  const [errors, setErrors] = useState<FieldErrors>({});
  // One Idempotency-Key per body sent: sending the same batch again (after a lost answer, a double
  // click) answers with the batch already made instead of starting the sweep twice.
  const keys = useRef(new Map<string, string>());
  const [failure, setFailure] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const formRef = useRef<HTMLFormElement>(null);
  const countId = useId();
  const total = pointCount(parameters, grid);
  const tooMany = total > MAX_POINTS;

  const shown = new Set<string>(["name", "maxParallel"]);
  for (const p of parameters) shown.add(`${PARAM_KEY}${p.name}`);

  const setParam = (name: string) => (change: Partial<ParameterDraft>) =>
    setGrid((g) => ({ ...g, [name]: { ...(g[name] as ParameterDraft), ...change } }));

  function show(found: FieldErrors, error: unknown = null) {
    setErrors(found);
    const message = [found.points, found.form].filter(Boolean).join(" ");
    setFailure(error ?? (message ? new Error(message) : null));
    window.setTimeout(() => {
      const form = formRef.current;
      const target = form?.querySelector<HTMLElement>("[aria-invalid='true']") ?? form?.querySelector<HTMLElement>(".alert-anchor");
      target?.focus();
    }, 0);
  }

  async function submit(event: FormEvent) {
    event.preventDefault();
    const local = checkGrid(parameters, grid, settings);
    if (Object.keys(local).length > 0) return show(local);
    const body: BatchBody = batchBody(template, grid, settings);
    const sent = JSON.stringify(body);
    const key = keys.current.get(sent) ?? crypto.randomUUID();
    keys.current.set(sent, key);
    setBusy(true);
    try {
      const created = await call(
        api.POST("/api/batches", { body: body as never, params: { header: { "Idempotency-Key": key } } }),
      );
      setErrors({});
      setFailure(null);
      onCreated({ batchId: created.batch_id, name: created.name, size: created.size });
    } catch (err) {
      if (err instanceof ApiError && err.status === 422 && Object.keys(err.errors).length > 0)
        show(batchFieldErrors(err.errors, body, shown));
      else show({}, err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form ref={formRef} className="template-form batch-form" aria-labelledby="run-batch-heading" onSubmit={submit} noValidate>
      <h2 id="run-batch-heading">Run a batch</h2>
      <p className="muted">
        Runs this template (version {template.version}) once per point of a grid: fix a parameter to one value, or sweep
        it over several; every combination of the swept values is a point (at most {MAX_POINTS.toLocaleString("en-US")}).
      </p>
      <div tabIndex={-1} className="alert-anchor">
        <ErrorAlert error={failure} />
      </div>
      {parameters.length === 0 && <p className="muted">This template has no parameters: a batch of it is one run.</p>}
      {parameters.map((p) => (
        <GridParameter key={p.name} parameter={p} draft={grid[p.name] as ParameterDraft} error={errors[`${PARAM_KEY}${p.name}`]} set={setParam(p.name)} />
      ))}
      <p id={countId} className={tooMany ? "point-count field-error" : "point-count"} aria-live="polite">
        <strong>{countInWords(parameters, grid)}</strong>
        {tooMany && ` — more than ${MAX_POINTS.toLocaleString("en-US")}: sweep fewer values.`}
      </p>
      <fieldset>
        <legend>How it runs</legend>
        <div className="radios" role="radiogroup" aria-label="Execution mode">
          <label className="radio">
            <input type="radio" name="execution-mode" checked={settings.mode === "parallel"} onChange={() => setSettings((s) => ({ ...s, mode: "parallel" }))} />
            Parallel
          </label>
          <label className="radio">
            <input type="radio" name="execution-mode" checked={settings.mode === "sequential"} onChange={() => setSettings((s) => ({ ...s, mode: "sequential" }))} />
            Sequential (one at a time)
          </label>
        </div>
        {settings.mode === "parallel" && (
          <Field label="Max parallel" error={errors.maxParallel} hint={`Points running at once, 1 to ${MAX_PARALLEL}`}>
            {(props) => (
              <input
                {...props}
                type="number"
                min={1}
                max={MAX_PARALLEL}
                step={1}
                inputMode="numeric"
                className="short-input"
                value={settings.maxParallel}
                onChange={(e) => setSettings((s) => ({ ...s, maxParallel: e.target.value }))}
              />
            )}
          </Field>
        )}
        <Field label="Batch name" error={errors.name} hint={`Empty: ${template.name}`}>
          {(props) => <input {...props} autoComplete="off" value={settings.name} onChange={(e) => setSettings((s) => ({ ...s, name: e.target.value }))} />}
        </Field>
      </fieldset>
      <div className="actions">
        <button type="submit" className="primary" disabled={busy} aria-describedby={countId}>
          Run batch
        </button>
      </div>
    </form>
  );
}
