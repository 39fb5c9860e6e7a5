import { type FormEvent, useRef, useState } from "react";

import { ApiError, api, call, messageOf } from "../api/client";
import { PRIORITIES, type Priority } from "../api/types";
import { Dialog } from "./Dialog";
import { Field } from "./Field";
import { useRefresh } from "./JobActions";
import { useAnnounce } from "./Status";

const MAX_REASON = 500;

interface Target {
  run_id: string;
  priority?: Priority | null;
}

/** What a refused priority change means, said so that the user knows what to do next. */
export function priorityProblem(err: unknown): string {
  if (err instanceof ApiError && err.status === 409) {
    const state = err.errors.state;
    const now = state === "admitted" ? "it has just been given a slot" : state ? `it is ${state} now` : "it is not waiting";
    return `This run no longer waits for a slot (${now}), so its priority cannot change. ${err.message}`.trim();
  }
  return messageOf(err);
}

/** The form inside the dialog: a priority class and the reason (kept in the job's audit trail). */
export function PriorityForm({
  run,
  what,
  onDone,
  onCancel,
}: {
  run: Target;
  what: string;
  onDone: () => void;
  onCancel: () => void;
}) {
  const announce = useAnnounce();
  const refresh = useRefresh();
  const [priority, setPriority] = useState<Priority>(run.priority === "urgent" ? "high" : "urgent");
  const [reason, setReason] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [problem, setProblem] = useState<string>("");
  const [busy, setBusy] = useState(false);
  const formRef = useRef<HTMLFormElement>(null);

  const focusFirstInvalid = () =>
    window.setTimeout(() => formRef.current?.querySelector<HTMLElement>("[aria-invalid='true']")?.focus(), 0);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setProblem("");
    const text = reason.trim();
    if (!text || text.length > MAX_REASON) {
      setErrors({ reason: text ? `At most ${MAX_REASON} characters (${text.length} now).` : "Say why: the reason goes to the job's audit trail." });
      focusFirstInvalid();
      return;
    }
    setBusy(true);
    try {
      const moved = await call(
        api.PUT("/api/runs/{run_id}/priority", { params: { path: { run_id: run.run_id } }, body: { priority, reason: text } }),
      );
      setErrors({});
      const place = moved.queue_position ? `, now at position ${moved.queue_position}` : "";
      announce(`${what}: priority set to ${priority}${place}`);
      void refresh();
      onDone();
    } catch (err) {
      if (err instanceof ApiError && err.status === 422 && Object.keys(err.errors).length > 0) {
        const { priority: p, reason: r, ...rest } = err.errors;
        setErrors({ ...(p ? { priority: p } : {}), ...(r ? { reason: r } : {}) });
        const other = Object.values(rest);
        setProblem(other.length > 0 ? other.join("; ") : "");
        focusFirstInvalid();
      } else {
        setErrors({});
        setProblem(priorityProblem(err));
        // The run may have moved on (admitted, cancelled): show what it is now.
        if (err instanceof ApiError && err.status === 409) void refresh();
      }
    } finally {
      setBusy(false);
    }
  }

  return (
    <form ref={formRef} onSubmit={submit} noValidate>
      <p className="muted">
        A run of {what}, waiting at {run.priority ?? "normal"} priority. Its new place in the queue shows once it is
        saved.
      </p>
      {problem && (
        <div role="alert" className="alert">
          <p>{problem}</p>
        </div>
      )}
      <Field label="Priority" error={errors.priority}>
        {(p) => (
          <select {...p} value={priority} onChange={(e) => setPriority(e.target.value as Priority)}>
            {PRIORITIES.map((o) => (
              <option key={o.value} value={o.value}>
                {o.label}
              </option>
            ))}
          </select>
        )}
      </Field>
      <Field label="Reason" error={errors.reason} hint="Required; kept in the job's audit trail.">
        {(p) => (
          <textarea
            {...p}
            rows={3}
            required
            aria-required="true"
            maxLength={MAX_REASON}
            value={reason}
            onChange={(e) => setReason(e.target.value)}
          />
        )}
      </Field>
      <div className="actions">
        <button type="submit" className="primary" disabled={busy}>
          Save priority
        </button>
        <button type="button" onClick={onCancel}>
          Close
        </button>
      </div>
    </form>
  );
}

/** The "Change priority" button of a waiting (QUEUED) run, and its dialog. `what`: its job's name. */
export function ChangePriority({ run, what }: { run: Target; what: string }) {
  const [open, setOpen] = useState(false);
  return (
    <>
      <button type="button" onClick={() => setOpen(true)}>
        Change priority
      </button>
      <Dialog open={open} title={`Change priority: ${what}`} onClose={() => setOpen(false)}>
        {open && <PriorityForm run={run} what={what} onDone={() => setOpen(false)} onCancel={() => setOpen(false)} />}
      </Dialog>
    </>
  );
}
