import { useQuery } from "@tanstack/react-query";
import { type FormEvent, type InputHTMLAttributes, useId, useRef, useState } from "react";

import { ApiError, api, call, messageOf } from "../api/client";
import { JOB_TYPES, type Pool } from "../api/types";
import { DurationField } from "./DurationField";
import { checkForm, type FieldErrors, fieldErrors, type FormState, scheduleOf } from "../lib/form";
import { Field } from "./Field";
import { taskInWords } from "./JobDetails";
import { NotificationsEditor } from "./NotificationsEditor";
import { ScheduleFields } from "./ScheduleFields";
import { TriggersEditor } from "./TriggersEditor";

interface Props {
  initial: FormState;
  submitLabel: string;
  onSubmit: (form: FormState) => Promise<void>; // throws ApiError to show field errors
}

type TextKey = { [K in keyof FormState]-?: FormState[K] extends string ? K : never }[keyof FormState];

/** The schedule's errors as the server sees them, asked of the preview (which saves nothing). */
async function scheduleErrors(form: FormState): Promise<FieldErrors> {
  try {
    await call(api.POST("/api/schedules/preview", { body: { schedule: scheduleOf(form), count: 1 } }));
    return {};
  } catch (err) {
    return err instanceof ApiError && err.status === 422 ? fieldErrors(err.errors) : {};
  }
}

/** The form that schedules a job and edits one: the user's input survives every refusal. */
export function JobForm({ initial, submitLabel, onSubmit }: Props) {
  const [form, setForm] = useState<FormState>(initial);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [busy, setBusy] = useState(false);
  const formRef = useRef<HTMLFormElement>(null);
  const uid = useId();
  const set = <K extends keyof FormState>(key: K, value: FormState[K]) => setForm((f) => ({ ...f, [key]: value }));
  const text = (label: string, key: TextKey, extra: InputHTMLAttributes<HTMLInputElement> = {}) => (
    <Field label={label} error={errors[key]}>
      {(p) => <input {...p} {...extra} value={form[key]} onChange={(e) => set(key, e.target.value)} />}
    </Field>
  );

  async function submit(event: FormEvent) {
    event.preventDefault();
    const local = checkForm(form);
    setBusy(true);
    try {
      if (Object.keys(local).length > 0) {
        // Nothing is sent while the browser sees a problem, but the schedule is still checked
        // (by the preview, which saves nothing) so that every error shows at once.
        const rest = { ...form, start: local.start ? "" : form.start, end: local.end ? "" : form.end };
        show({ ...(form.scheduled ? await scheduleErrors(rest) : {}), ...local });
        return;
      }
      await onSubmit(form);
      setErrors({});
    } catch (err) {
      show(err instanceof ApiError && err.status === 422 ? fieldErrors(err.errors) : { form: messageOf(err) });
    } finally {
      setBusy(false);
    }
  }

  function show(found: FieldErrors) {
    setErrors(found);
    focusFirstInvalid();
  }

  function focusFirstInvalid() {
    window.setTimeout(() => {
      const first = formRef.current?.querySelector<HTMLElement>("[aria-invalid='true']");
      first?.focus();
    }, 0);
  }

  const pairRows = (
    <fieldset className="rows">
      <legend>{form.taskKind === "databricks_job" ? "Parameters" : "Widget values"}</legend>
      {form.pairs.map((pair, i) => (
        <div className="row-inputs" key={i}>
          <Field label="Parameter name">
            {(p) => (
              <input
                {...p}
                value={pair.key}
                onChange={(e) => set("pairs", form.pairs.map((x, j) => (j === i ? { ...x, key: e.target.value } : x)))}
              />
            )}
          </Field>
          <Field label="Parameter value">
            {(p) => (
              <input
                {...p}
                value={pair.value}
                onChange={(e) => set("pairs", form.pairs.map((x, j) => (j === i ? { ...x, value: e.target.value } : x)))}
              />
            )}
          </Field>
          <button type="button" className="link-button" onClick={() => set("pairs", form.pairs.filter((_, j) => j !== i))}>
            Remove parameter
          </button>
        </div>
      ))}
      {errors.pairs && <div className="field-error">{errors.pairs}</div>}
      <button type="button" onClick={() => set("pairs", [...form.pairs, { key: "", value: "" }])}>
        Add parameter
      </button>
    </fieldset>
  );

  const argRows = (
    <fieldset className="rows">
      <legend>Arguments</legend>
      {form.args.map((arg, i) => (
        <div className="row-inputs" key={i}>
          <Field label="Argument">
            {(p) => <input {...p} value={arg} onChange={(e) => set("args", form.args.map((x, j) => (j === i ? e.target.value : x)))} />}
          </Field>
          <button type="button" className="link-button" onClick={() => set("args", form.args.filter((_, j) => j !== i))}>
            Remove argument
          </button>
        </div>
      ))}
      <button type="button" onClick={() => set("args", [...form.args, ""])}>
        Add argument
      </button>
    </fieldset>
  );

  return (
    <form ref={formRef} className="job-form" onSubmit={submit} noValidate>
      {errors.form && (
        <div role="alert" className="alert">
          {errors.form}
        </div>
      )}
      <fieldset>
        <legend>Job</legend>
        {text("Name", "name", { autoComplete: "off" })}
        <Field label="Description" error={errors.description}>
          {(p) => <textarea {...p} rows={2} value={form.description} onChange={(e) => set("description", e.target.value)} />}
        </Field>
        <Field label="Job type" error={errors.jobType}>
          {(p) => (
            <select {...p} value={form.jobType} onChange={(e) => set("jobType", e.target.value as FormState["jobType"])}>
              {JOB_TYPES.map((t) => (
                <option key={t.value} value={t.value}>
                  {t.label}
                </option>
              ))}
            </select>
          )}
        </Field>
      </fieldset>

      <fieldset>
        <legend>Task</legend>
        {errors.task && <div className="field-error">{errors.task}</div>}
        {form.pipeline ? (
          <p>
            {taskInWords(form.pipeline)}. Its steps are edited through the API (<code>PUT /api/jobs/{"{job_id}"}</code>);
            everything else here.
          </p>
        ) : (
          <>
          <Field label="Task kind">
            {(p) => (
              <select {...p} value={form.taskKind} onChange={(e) => set("taskKind", e.target.value as FormState["taskKind"])}>
                <option value="databricks_job">Databricks job</option>
                <option value="databricks_run">One-off run</option>
              </select>
            )}
          </Field>
          {form.taskKind === "databricks_job" ? (
            <>
              {text("Databricks job id", "jobId", { inputMode: "numeric" })}
              {pairRows}
            </>
          ) : (
            <>
              <Field label="Run what">
                {(p) => (
                  <select {...p} value={form.runWhat} onChange={(e) => set("runWhat", e.target.value as FormState["runWhat"])}>
                    <option value="notebook">Notebook</option>
                    <option value="python_file">Python file</option>
                    <option value="python_wheel">Python wheel</option>
                  </select>
                )}
              </Field>
              {form.runWhat === "notebook" && (
                <>
                  {text("Notebook path", "notebookPath")}
                  {pairRows}
                </>
              )}
              {form.runWhat === "python_file" && (
                <>
                  {text("Python file", "pythonFile")}
                  {argRows}
                </>
              )}
              {form.runWhat === "python_wheel" && (
                <>
                  {text("Package name", "packageName")}
                  {text("Entry point", "entryPoint")}
                  {argRows}
                </>
              )}
              <Field label="Cluster">
                {(p) => (
                  <select {...p} value={form.clusterKind} onChange={(e) => set("clusterKind", e.target.value as FormState["clusterKind"])}>
                    <option value="existing">Existing cluster</option>
                    <option value="new">New cluster</option>
                  </select>
                )}
              </Field>
              {form.clusterKind === "existing" ? (
                text("Existing cluster id", "clusterId")
              ) : (
                <>
                  {text("Spark version", "sparkVersion")}
                  {text("Node type", "nodeType")}
                  {text("Workers", "workers", { inputMode: "numeric" })}
                </>
              )}
            </>
          )}
          </>
        )}
      </fieldset>

      <ScheduleFields form={form} errors={errors} set={set}>
        No schedule: it runs when its triggers fire{form.triggers.length === 0 ? " (it has none: only when asked)" : ""}.
      </ScheduleFields>

      <TriggersEditor
        drafts={form.triggers}
        scheduled={form.scheduled}
        errors={errors}
        onChange={(triggers) => {
          set("triggers", triggers);
          // a removed trigger's errors would land on the one after it
          if (triggers.length < form.triggers.length)
            setErrors((e) => Object.fromEntries(Object.entries(e).filter(([k]) => !k.startsWith("triggers"))));
        }}
      />

      <fieldset aria-describedby={`${uid}-paused`}>
        <legend>While paused</legend>
        <p className="hint" id={`${uid}-paused`}>
          What happens to the schedule&apos;s times that pass and the events that arrive (files, webhook calls) while the
          job is paused. Resuming never runs them afterwards: use Run now for one that matters.
        </p>
        <div className="choices">
          {(
            [
              [false, "Drop them", "Nothing is recorded; a webhook call is refused (409), so its caller knows."],
              [true, "Record them as skipped runs", "Each shows in the runs as SKIPPED (paused), with its cause; a webhook call is accepted (202)."],
            ] as const
          ).map(([value, label, help]) => (
            <div key={label} className="radio choice">
              <input
                type="radio"
                id={`${uid}-paused-${String(value)}`}
                name="record-skipped"
                checked={form.recordSkipped === value}
                onChange={() => set("recordSkipped", value)}
                aria-describedby={`${uid}-paused-${String(value)}-help`}
              />
              <div>
                <label htmlFor={`${uid}-paused-${String(value)}`}>{label}</label>
                <div className="hint" id={`${uid}-paused-${String(value)}-help`}>
                  {help}
                </div>
              </div>
            </div>
          ))}
        </div>
      </fieldset>

      <fieldset>
        <legend>Policies</legend>
        <div className="grid">
          {text("Max attempts", "maxAttempts", { inputMode: "numeric" })}
          <DurationField label="Retry delay" value={form.retryDelay} error={errors.retryDelay} onChange={(v) => set("retryDelay", v)} />
          <DurationField label="Timeout" value={form.timeout} error={errors.timeout} onChange={(v) => set("timeout", v)} />
          <Field label="Overlap" error={errors.overlap}>
            {(p) => (
              <select {...p} value={form.overlap} onChange={(e) => set("overlap", e.target.value as FormState["overlap"])}>
                <option value="skip">Skip if still running</option>
                <option value="buffer_one">Queue one</option>
                <option value="allow">Run in parallel</option>
                <option value="cancel_previous">Cancel the previous run</option>
              </select>
            )}
          </Field>
          <Field label="Misfire" error={errors.misfire}>
            {(p) => (
              <select {...p} value={form.misfire} onChange={(e) => set("misfire", e.target.value as FormState["misfire"])}>
                <option value="fire_once">Fire once</option>
                <option value="skip">Skip missed times</option>
                <option value="catch_up">Catch up</option>
              </select>
            )}
          </Field>
          <Field label="Priority" error={errors.priority}>
            {(p) => (
              <select {...p} value={form.priority} onChange={(e) => set("priority", e.target.value as FormState["priority"])}>
                <option value="low">Low</option>
                <option value="normal">Normal</option>
                <option value="high">High</option>
                <option value="urgent">Urgent</option>
              </select>
            )}
          </Field>
          <Field label="Tags" error={errors.tags} hint="Comma-separated">
            {(p) => <input {...p} value={form.tags} onChange={(e) => set("tags", e.target.value)} />}
          </Field>
        </div>
      </fieldset>
      <fieldset>
        <legend>Capacity</legend>
        <div className="grid">
          <PoolField value={form.pool} error={errors.pool} onChange={(v) => set("pool", v)} />
          {text("Slots", "slots", { inputMode: "numeric" })}
          <DurationField
            label="Deadline"
            value={form.deadline}
            error={errors.deadline}
            hint="After the scheduled time; empty: none"
            onChange={(v) => set("deadline", v)}
          />
        </div>
      </fieldset>
      <NotificationsEditor
        draft={form.notifications}
        errors={errors}
        onChange={(notifications, moved) => {
          set("notifications", notifications);
          // a removed or moved destination's errors would land on another
          if (moved) setErrors((e) => Object.fromEntries(Object.entries(e).filter(([k]) => !k.startsWith("notifications"))));
        }}
      />
      <div className="actions">
        <button type="submit" className="primary" disabled={busy}>
          {submitLabel}
        </button>
      </div>
    </form>
  );
}

/** What a pool offers, in a few words: "4 slots, 3 used, 2 waiting", "unbounded: runs never wait". */
export function poolInWords(pool: Pool): string {
  if (pool.slots == null) return "unbounded: runs never wait";
  return `${pool.slots} ${pool.slots === 1 ? "slot" : "slots"}, ${pool.used} used, ${pool.pending} waiting`;
}

/** The pools to choose from (GET /api/pools); a text box if they cannot be listed. */
function PoolField({ value, error, onChange }: { value: string; error?: string; onChange: (v: string) => void }) {
  const pools = useQuery({
    queryKey: ["pools"],
    queryFn: () => call(api.GET("/api/pools")),
  });
  const items = pools.data?.items ?? [];
  const chosen = items.find((p) => p.name === value);
  const names = items.map((p) => p.name);
  if (!names.includes(value)) names.unshift(value); // a pool not (or not yet) listed stays chosen
  const hint = pools.isError
    ? `The pools could not be listed (${messageOf(pools.error)}); type the name.`
    : chosen
      ? poolInWords(chosen)
      : pools.isPending
        ? "Loading pools…"
        : undefined;
  return (
    <Field label="Pool" error={error} hint={hint}>
      {(p) =>
        pools.isError ? (
          <input {...p} value={value} onChange={(e) => onChange(e.target.value)} autoComplete="off" spellCheck={false} />
        ) : (
          <select {...p} value={value} onChange={(e) => onChange(e.target.value)}>
            {names.map((name) => (
              <option key={name} value={name}>
                {name}
              </option>
            ))}
          </select>
        )
      }
    </Field>
  );
}
