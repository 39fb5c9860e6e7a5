import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";

import { ApiError, api, call, messageOf } from "../api/client";
import type { Job, Run } from "../api/types";
import { formatInstant } from "../lib/time";

export type ReplayTarget = Pick<Job, "job_id" | "name" | "status"> &
  Partial<Pick<Job, "triggers" | "paused_at" | "record_skipped_while_paused">>;

/** Whether a job runs on events the scheduler may record as skipped while it is paused (files, webhook calls). */
export function hasEventTriggers(job: ReplayTarget): boolean {
  return (job.triggers ?? []).some((t) => t.kind === "file_arrival" || t.kind === "webhook");
}

/** "Replay skipped events…" is offered to an ACTIVE job with event triggers that was paused at some time. */
export function canReplay(job: ReplayTarget): boolean {
  return job.status === "ACTIVE" && job.paused_at != null && hasEventTriggers(job);
}

/** "Started 2 runs", "Nothing to replay". */
export function replayedInWords(runs: readonly Run[]): string {
  if (runs.length === 0) return "Nothing to replay";
  return `Started ${runs.length} ${runs.length === 1 ? "run" : "runs"}`;
}

/**
 * The content of the "Replay skipped events of {job}" dialog: what replaying does, the call
 * (POST /api/jobs/{id}/replay), then how many runs it started; a refusal (409: not ACTIVE) as
 * the server explains it. Each skipped event is replayed at most once, so calling again is safe.
 */
export function ReplaySkipped({ job, onClose, onReplayed }: { job: ReplayTarget; onClose: () => void; onReplayed?: (runs: Run[]) => void }) {
  const client = useQueryClient();
  const [busy, setBusy] = useState(false);
  const [refused, setRefused] = useState<unknown>(null);
  const [started, setStarted] = useState<Run[] | null>(null);

  async function replay() {
    if (busy) return;
    setBusy(true);
    setRefused(null);
    setStarted(null);
    try {
      const answer = await call(api.POST("/api/jobs/{job_id}/replay", { params: { path: { job_id: job.job_id } } }));
      setStarted(answer.items); // announced by its role=status below
      onReplayed?.(answer.items);
      void client.invalidateQueries(); // the runs list, the job
    } catch (err) {
      setRefused(err);
    } finally {
      setBusy(false);
    }
  }

  const status = refused instanceof ApiError && refused.status > 0 ? ` (HTTP ${refused.status})` : "";
  const since = job.paused_at ? formatInstant(job.paused_at) : "its last pause";
  return (
    <>
      <p>
        Runs the file arrivals and webhook calls recorded as skipped since the job was paused at {since}; each only
        once. Each starts a new run now, with the files or the parameters it came with; the skipped runs stay in the
        history as they are.
      </p>
      {job.record_skipped_while_paused === false && (
        <p className="note">
          This job drops files and webhook calls while it is paused (it does not record them as skipped runs), so there
          may be nothing to replay.
        </p>
      )}
      {refused != null && (
        <div role="alert" className="alert">
          <p>
            <strong>Refused{status}:</strong> {messageOf(refused)}
          </p>
        </div>
      )}
      {/* always there, so that what it comes to say is announced */}
      <div role="status" className={started ? "confirmation" : undefined}>
        {started && (
          <p>
            <strong>{replayedInWords(started)}</strong>
            {started.length === 0
              ? ": no file arrival or webhook call was recorded as skipped since the pause, or each was replayed already."
              : `: one for each ${started.length === 1 ? "event" : "of the events"} skipped while the job was paused. They are in the job's runs.`}
          </p>
        )}
      </div>
      <div className="actions">
        <button type="button" className="primary" onClick={() => void replay()} aria-disabled={busy}>
          Replay events
        </button>
        <button type="button" onClick={onClose}>
          Close
        </button>
      </div>
    </>
  );
}
