import { type FormEvent, useId, useRef, useState } from "react";

import { ApiError, api, call } from "../api/client";
import { emptyForm, type FieldErrors, type FormState, scheduleOf } from "../lib/form";
import {
  checkInputs,
  initialInputs,
  inputKind,
  needInWords,
  offersNone,
  PARAM_KEY,
  type ParameterInputs,
  parameterValues,
  type Template,
  type TemplateParameter,
  templateFieldErrors,
  typeInWords,
  valueText,
} from "../lib/templates";
import { browserZone } from "../lib/time";
import { ErrorAlert } from "./ErrorAlert";
import { Field } from "./Field";
import { ScheduleFields } from "./ScheduleFields";

export interface Created {
  jobId: string;
  name: string;
}

interface Props {
  template: Template;
  onCreated: (created: Created) => void;
}

/** One parameter's input, generated from its type; its error (`param:<name>`) tied to it. */
function ParameterField({
  parameter: p,
  value,
  error,
  onChange,
}: {
  parameter: TemplateParameter;
  value: string | boolean;
  error?: string;
  onChange: (value: string | boolean) => void;
}) {
  const id = useId();
  const kind = inputKind(p.type);
  const hint = [typeInWords(p), needInWords(p)].join(" · ") + (p.description ? `: ${p.description}` : "");
  if (kind.element === "checkbox") {
    const described = [error ? `${id}-error` : null, `${id}-hint`].filter(Boolean).join(" ");
    return (
      <div className={error ? "field field-invalid" : "field"}>
        <label className="check" htmlFor={id}>
          <input
            id={id}
            type="checkbox"
            name={`param-${p.name}`}
            checked={value === true}
            onChange={(e) => onChange(e.target.checked)}
            aria-describedby={described}
            {...(error ? { "aria-invalid": true as const } : {})}
          />
          {p.name}
        </label>
        <div id={`${id}-hint`} className="hint">
          {hint}
        </div>
        {error && (
          <div id={`${id}-error`} className="field-error">
            {error}
          </div>
        )}
      </div>
    );
  }
  const text = typeof value === "string" ? value : "";
  return (
    <Field label={p.name} error={error} hint={hint} required={p.required}>
      {(props) =>
        kind.element === "select" ? (
          <select {...props} name={`param-${p.name}`} required={p.required} value={text} onChange={(e) => onChange(e.target.value)}>
            {offersNone(p) && <option value="">{p.required ? "Choose…" : "(none)"}</option>}
            {(p.options ?? []).map((o, i) => (
              <option key={i} value={String(i)}>
                {valueText(o)}
              </option>
            ))}
          </select>
        ) : (
          <input
            {...props}
            name={`param-${p.name}`}
            type={kind.type}
            step={kind.step}
            inputMode={kind.inputMode}
            required={p.required}
            autoComplete="off"
            value={text}
            onChange={(e) => onChange(e.target.value)}
          />
        )
      }
    </Field>
  );
}

/**
 * "Create job from template": an input per parameter (by its type, defaults filled in), the job's
 * name, description and schedule. Values go typed; the server's 422 lands at each field.
 */
export function TemplateJobForm({ template, onCreated }: Props) {
  const parameters = template.parameters ?? [];
  const [inputs, setInputs] = useState<ParameterInputs>(() => initialInputs(parameters));
  const [schedule, setSchedule] = useState<FormState>(() => emptyForm(browserZone()));
  const [errors, setErrors] = useState<FieldErrors>({});
  const [failure, setFailure] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const formRef = useRef<HTMLFormElement>(null);
  const set = <K extends keyof FormState>(key: K, value: FormState[K]) => setSchedule((f) => ({ ...f, [key]: value }));

  // The fields that show an error of their own; any other goes to the alert.
  const shown = new Set<string>(["name", "description", "schedule", "cron", "timezone", "at", "every", "start", "end"]);
  for (const p of parameters) shown.add(`${PARAM_KEY}${p.name}`);

  function show(found: FieldErrors, error: unknown = null) {
    setErrors(found);
    setFailure(error ?? (found.form ? new Error(found.form) : null));
    window.setTimeout(() => formRef.current?.querySelector<HTMLElement>("[aria-invalid='true']")?.focus(), 0);
  }

  async function submit(event: FormEvent) {
    event.preventDefault();
    const local = checkInputs(parameters, inputs);
    if (!schedule.name.trim()) local.name = "A job needs a name.";
    if (Object.keys(local).length > 0) return show(local);
    setBusy(true);
    try {
      const body = {
        template: template.name,
        version: template.version,
        parameters: parameterValues(parameters, inputs),
        name: schedule.name.trim(),
        ...(schedule.description.trim() ? { description: schedule.description } : {}),
        schedule: schedule.scheduled ? scheduleOf(schedule) : null,
      };
      const created = await call(api.POST("/api/jobs/schedule", { body: body as never }));
      setErrors({});
      setFailure(null);
      onCreated({ jobId: created.job_id, name: body.name });
    } catch (err) {
      if (err instanceof ApiError && err.status === 422 && Object.keys(err.errors).length > 0) {
        show(templateFieldErrors(err.errors, shown));
      } else show({}, err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form ref={formRef} className="template-form" aria-labelledby="make-job-heading" onSubmit={submit} noValidate>
      <h2 id="make-job-heading">Create job from template</h2>
      <p className="muted">
        A new job with this template&apos;s task and policies (version {template.version}), its parameters filled in with
        these values. Fields marked <span aria-hidden="true">*</span> are required.
      </p>
      <ErrorAlert error={failure} />
      <fieldset>
        <legend>Parameters</legend>
        {parameters.length === 0 && <p className="muted">This template has no parameters.</p>}
        {parameters.map((p) => (
          <ParameterField
            key={p.name}
            parameter={p}
            value={inputs[p.name] ?? ""}
            error={errors[`${PARAM_KEY}${p.name}`]}
            onChange={(v) => setInputs((current) => ({ ...current, [p.name]: v }))}
          />
        ))}
      </fieldset>
      <fieldset>
        <legend>Job</legend>
        <Field label="Name" error={errors.name} required>
          {(p) => <input {...p} required autoComplete="off" value={schedule.name} onChange={(e) => set("name", e.target.value)} />}
        </Field>
        <Field label="Description" error={errors.description} hint="Empty: the template's description">
          {(p) => <textarea {...p} rows={2} value={schedule.description} onChange={(e) => set("description", e.target.value)} />}
        </Field>
      </fieldset>
      <ScheduleFields form={schedule} errors={errors} set={set}>
        No schedule: it runs only when asked (Run now).
      </ScheduleFields>
      <div className="actions">
        <button type="submit" className="primary" disabled={busy}>
          Create job
        </button>
      </div>
    </form>
  );
}
