import { type FormEvent, useRef, useState } from "react";
import { Link } from "react-router-dom";

import { ApiError, answered, api, messageOf } from "../api/client";
import type { AfterTrigger, Job, Run } from "../api/types";
import { formatInstant } from "../lib/time";
import {
  afterInWords,
  checkIdempotencyKey,
  curlExample,
  fileWaitsInWords,
  filePattern,
  newIdempotencyKey,
  parseParameters,
  webhookUrl,
} from "../lib/triggers";
import { Dialog } from "./Dialog";
import { Field } from "./Field";
import { useRefresh } from "./JobActions";
import { JobLinks, runPath } from "./JobLink";
import { useAnnounce } from "./Status";

type Target = Pick<Job, "job_id" | "name" | "status">;

/** A job's triggers in words; a webhook's URL, a curl example and "Trigger…". */
export function JobTriggers({ job }: { job: Job }) {
  const triggers = job.triggers ?? [];
  const events = triggers.some((t) => t.kind !== "after");
  return (
    <section aria-labelledby="triggers-heading">
      <h2 id="triggers-heading">Triggers</h2>
      {triggers.length === 0 ? (
        <p>
          {job.schedule
            ? "None: it runs on its schedule, and when asked (Run now)."
            : "None, and no schedule: it runs only when asked (Run now)."}
        </p>
      ) : (
        <ul className="triggers">
          {triggers.map((t, i) => (
            <li key={i}>
              {t.kind === "after" && <AfterLine trigger={t} />}
              {t.kind === "file_arrival" && (
                <>
                  When a blob is created in <code>{filePattern(t)}</code>
                  {fileWaitsInWords(t)}
                </>
              )}
              {t.kind === "webhook" && <Webhook job={job} />}
            </li>
          ))}
        </ul>
      )}
      {events && (
        <p className="muted small">
          While the job is paused, files and webhook calls (and schedule times) are{" "}
          {job.record_skipped_while_paused
            ? "recorded as skipped runs. Once it is resumed, they run only if you ask (Replay skipped events…), each once."
            : "dropped: nothing is recorded, and a webhook call is refused."}
        </p>
      )}
    </section>
  );
}

function AfterLine({ trigger }: { trigger: AfterTrigger }) {
  return (
    <>
      After <JobLinks ids={trigger.jobs} />: {afterInWords(trigger)}
    </>
  );
}

async function copy(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

function Webhook({ job }: { job: Job }) {
  const announce = useAnnounce();
  const [open, setOpen] = useState(false);
  const url = webhookUrl(window.location.origin, job.job_id);
  const curl = curlExample(url);
  const copied = async (text: string, what: string) =>
    announce((await copy(text)) ? `Copied the ${what}` : `Could not copy the ${what}: select it and copy it`);
  return (
    <div className="webhook">
      <p>
        When called (webhook): <code>POST</code> with an <code>Idempotency-Key</code> header and a JSON object of
        parameters, each reaching the task as <code>{"{{trigger.payload.<key>}}"}</code>.
      </p>
      <dl className="facts">
        <dt>Endpoint</dt>
        <dd>
          <code className="url">{url}</code>
        </dd>
      </dl>
      <figure className="example">
        <figcaption className="muted small">
          For example (a new key for each call; the same key again answers with the same run and starts nothing):
        </figcaption>
        <pre className="code">
          <code>{curl}</code>
        </pre>
      </figure>
      <p className="muted small">
        Deployed, the caller adds its credentials as for any API call (an Entra ID bearer token, or a function key).
      </p>
      <div className="actions wrap">
        <button type="button" onClick={() => void copied(url, "webhook URL")}>
          Copy URL
        </button>
        <button type="button" onClick={() => void copied(curl, "curl command")}>
          Copy curl command
        </button>
        {job.status !== "CANCELLED" && (
          <button type="button" className="primary" onClick={() => setOpen(true)}>
            Trigger…
          </button>
        )}
      </div>
      <Dialog open={open} title={`Trigger ${job.name}`} onClose={() => setOpen(false)}>
        {open && <TriggerForm job={job} onClose={() => setOpen(false)} />}
      </Dialog>
    </div>
  );
}

interface Result {
  run: Run;
  replayed: boolean;
  key: string;
}

/** Where a refusal's field errors go: the header's to the key, the body's to the parameters. */
function splitErrors(errors: Record<string, string>): { key?: string; parameters?: string } {
  const key = Object.entries(errors).filter(([path]) => /idempotency-key/i.test(path));
  const rest = Object.entries(errors).filter(([path]) => !/idempotency-key/i.test(path));
  const join = (items: [string, string][]) =>
    items.length ? items.map(([path, m]) => (path === "body" || /idempotency-key/i.test(path) ? m : `${path.replace(/^body\./, "")}: ${m}`)).join("; ") : undefined;
  const out: { key?: string; parameters?: string } = {};
  const k = join(key);
  const p = join(rest);
  if (k) out.key = k;
  if (p) out.parameters = p;
  return out;
}

/**
 * The "Trigger {job}" dialog's form: parameters (a JSON object, checked here first) and an
 * Idempotency-Key (a fresh UUID, editable); then the run it started, or the one the key started
 * before; a refusal (409, 422) is shown as the server explains it.
 */
export function TriggerForm({ job, onClose }: { job: Target; onClose: () => void }) {
  const refresh = useRefresh();
  const [parameters, setParameters] = useState("");
  const [key, setKey] = useState(newIdempotencyKey);
  const [errors, setErrors] = useState<{ key?: string; parameters?: string }>({});
  const [refused, setRefused] = useState<ApiError | Error | null>(null);
  const [result, setResult] = useState<Result | null>(null);
  const [busy, setBusy] = useState(false);
  const formRef = useRef<HTMLFormElement>(null);

  const focusFirstInvalid = () =>
    window.setTimeout(() => formRef.current?.querySelector<HTMLElement>("[aria-invalid='true']")?.focus(), 0);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setRefused(null);
    setResult(null);
    const parsed = parseParameters(parameters);
    const keyError = checkIdempotencyKey(key);
    const found = { ...(parsed.ok ? {} : { parameters: parsed.error }), ...(keyError ? { key: keyError } : {}) };
    setErrors(found);
    if (!parsed.ok || keyError) {
      focusFirstInvalid();
      return;
    }
    setBusy(true);
    try {
      const { data, response } = await answered(
        api.POST("/api/jobs/{job_id}/trigger", {
          params: { path: { job_id: job.job_id }, header: { "Idempotency-Key": key } },
          body: parsed.value,
        }),
      );
      const replayed = response.headers.get("Idempotent-Replayed") === "true";
      setResult({ run: data, replayed, key }); // announced by its role=status inside the dialog
      void refresh();
    } catch (err) {
      if (err instanceof ApiError && err.status === 422 && Object.keys(err.errors).length > 0) {
        setErrors(splitErrors(err.errors));
        focusFirstInvalid();
      }
      setRefused(err instanceof Error ? err : new Error(messageOf(err)));
    } finally {
      setBusy(false);
    }
  }

  const status = refused instanceof ApiError && refused.status > 0 ? ` (HTTP ${refused.status})` : "";
  return (
    <form ref={formRef} onSubmit={submit} noValidate>
      <p className="muted">
        Starts a run of {job.name} now, as a webhook call would (<code>POST /api/jobs/{"{job id}"}/trigger</code>).
      </p>
      {refused && (
        <div role="alert" className="alert">
          <p>
            <strong>Refused{status}:</strong> {messageOf(refused)}
          </p>
        </div>
      )}
      <Field
        label="Parameters (JSON object)"
        error={errors.parameters}
        hint={
          <>
            e.g. <code>{'{"model": "churn", "full": true}'}</code>: strings, numbers or booleans, each reaching the task
            as <code>{"{{trigger.payload.<key>}}"}</code>. Empty: none.
          </>
        }
      >
        {(p) => (
          <textarea
            {...p}
            className="mono"
            rows={5}
            spellCheck={false}
            value={parameters}
            onChange={(e) => setParameters(e.target.value)}
          />
        )}
      </Field>
      <div className="row-inputs">
        <Field label="Idempotency key" error={errors.key} hint="The same key again answers with the same run and starts nothing.">
          {(p) => (
            <input
              {...p}
              className="mono key-input"
              value={key}
              onChange={(e) => setKey(e.target.value)}
              autoComplete="off"
              spellCheck={false}
            />
          )}
        </Field>
        <button type="button" className="field-button" onClick={() => setKey(newIdempotencyKey())}>
          New key
        </button>
      </div>
      {/* always there, so that what it comes to say is announced */}
      <div role="status" className={result ? "confirmation" : undefined}>
        {result && (
          <>
            <p>
              {result.replayed ? (
                <>
                  <strong>No new run:</strong> the key <code>{result.key}</code> already started this run.
                </>
              ) : (
                <>
                  <strong>Run started</strong> with the key <code>{result.key}</code>.
                </>
              )}
            </p>
            <p>
              Run <code className="url">{result.run.run_id}</code>, {result.run.state.toLowerCase()}, scheduled for{" "}
              {formatInstant(result.run.scheduled_for)}. <Link to={runPath(result.run.job_id, result.run.run_id)}>View run</Link>
            </p>
          </>
        )}
      </div>
      <div className="actions">
        <button type="submit" className="primary" disabled={busy}>
          Trigger run
        </button>
        <button type="button" onClick={onClose}>
          Close
        </button>
      </div>
    </form>
  );
}
