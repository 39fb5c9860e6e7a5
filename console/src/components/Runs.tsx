import { useQuery } from "@tanstack/react-query";

import { api, call } from "../api/client";
import { type Attempt, type AuditEntry, isTerminal, type Run } from "../api/types";
import { duration, formatEstimate, formatInstant } from "../lib/time";
import { ChangePriority } from "./ChangePriority";

const PLACE_MS = 3000;

/** Where a QUEUED run stands: only GET /api/runs/{id} knows (the runs list does not say). */
function QueuePlace({ run }: { run: Run }) {
  const one = useQuery({
    queryKey: ["run", run.run_id],
    queryFn: () => call(api.GET("/api/runs/{run_id}", { params: { path: { run_id: run.run_id } } })),
    refetchInterval: PLACE_MS,
  });
  const place = one.data?.state === "QUEUED" ? one.data : null;
  return (
    <div className="small queue-place">
      waiting for a slot{run.pool ? ` in pool ${run.pool}` : ""}
      {run.priority ? ` · ${run.priority} priority` : ""}
      {place?.queue_position != null && (
        <>
          {" "}
          · <strong>position {place.queue_position}</strong> · starts {formatEstimate(place.estimated_start_at)}
        </>
      )}
    </div>
  );
}

/** A visible mark on a run that did not finish by its deadline. */
export function DeadlineMissed({ at }: { at?: string | null }) {
  if (!at) return null;
  return (
    <span className="badge badge-missed" title={`Deadline missed at ${formatInstant(at)}`}>
      Deadline missed
    </span>
  );
}

function AttemptLine({ attempt }: { attempt: Attempt }) {
  return (
    <li>
      <span>#{attempt.number}</span> <span className={`state state-${attempt.result ?? "RUNNING"}`}>{attempt.result ?? "running"}</span>
      {attempt.failure && <span className="muted"> ({attempt.failure})</span>}{" "}
      <span className="muted">
        launched {formatInstant(attempt.launched_at)}
        {attempt.ended_at && `, took ${duration(attempt.started_at ?? attempt.launched_at, attempt.ended_at)}`}
      </span>{" "}
      {attempt.run_page_url && attempt.databricks_run_id != null && (
        <a href={attempt.run_page_url} target="_blank" rel="noreferrer">
          Databricks run {attempt.databricks_run_id}
        </a>
      )}
      {attempt.error && <div className="muted small">{attempt.error}</div>}
    </li>
  );
}

/** A job's runs: every scheduled time, what happened to it, each attempt; Retry on a failed run. */
export function RunsTable({
  runs,
  label,
  jobName,
  onRetry,
  retrying,
}: {
  runs: Run[];
  label: string;
  jobName: string;
  onRetry?: (run: Run) => void;
  retrying?: string | null;
}) {
  if (runs.length === 0) return <p className="muted">No runs yet.</p>;
  const actions = onRetry !== undefined || runs.some((r) => r.state === "QUEUED");
  return (
    <div className="table-wrap">
      <table aria-label={label} className="runs">
        <thead>
          <tr>
            <th scope="col">Scheduled for</th>
            <th scope="col">Trigger</th>
            <th scope="col">State</th>
            <th scope="col">Attempts</th>
            {actions && <th scope="col">Action</th>}
          </tr>
        </thead>
        <tbody>
          {runs.map((run) => (
            <tr key={run.run_id}>
              <td>{formatInstant(run.scheduled_for)}</td>
              <td>{run.trigger}</td>
              <td>
                <span className={`state state-${run.state}`}>{run.state}</span> <DeadlineMissed at={run.deadline_missed_at} />
                {run.state === "QUEUED" && <QueuePlace run={run} />}
                {/* a QUEUED run's reason only says what the line above says */}
                {run.reason && run.state !== "QUEUED" && <div className="muted small">{run.reason}</div>}
                {run.deadline_at && !run.deadline_missed_at && !isTerminal(run.state) && (
                  <div className="muted small">due by {formatInstant(run.deadline_at)}</div>
                )}
              </td>
              <td>
                {(run.attempts ?? []).length > 0 ? (
                  <ul className="attempts">
                    {(run.attempts ?? []).map((a) => (
                      <AttemptLine key={a.number} attempt={a} />
                    ))}
                  </ul>
                ) : (
                  <span className="muted">—</span>
                )}
              </td>
              {actions && (
                <td>
                  {onRetry && (run.state === "FAILED" || run.state === "TIMED_OUT") && (
                    <button type="button" className="primary" onClick={() => onRetry(run)} disabled={retrying === run.run_id}>
                      Retry
                    </button>
                  )}
                  {run.state === "QUEUED" && <ChangePriority run={run} what={jobName} />}
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

const show = (value: unknown) => (value === undefined || value === null ? "—" : typeof value === "string" ? value : JSON.stringify(value));

function Diff({ entry }: { entry: AuditEntry }) {
  return (
    <ul className="diff">
      {entry.changes.map((change) => (
        <li key={change.field}>
          <code>{change.field.replace(/^definition\./, "")}</code>: <del>{show(change.before)}</del> → <ins>{show(change.after)}</ins>
        </li>
      ))}
    </ul>
  );
}

export function AuditList({ entries }: { entries: AuditEntry[] }) {
  if (entries.length === 0) return <p className="muted">No changes recorded.</p>;
  return (
    <ol className="audit">
      {entries.map((entry) => (
        <li key={entry.revision}>
          <p>
            <strong>{entry.actor.name}</strong> — {entry.action} (version {entry.version}),{" "}
            <span className="muted">{formatInstant(entry.at)}</span>
          </p>
          {entry.changes.length > 0 && entry.action === "create" && (
            <details>
              <summary>{entry.changes.length} fields set</summary>
              <Diff entry={entry} />
            </details>
          )}
          {entry.changes.length > 0 && entry.action !== "create" && <Diff entry={entry} />}
        </li>
      ))}
    </ol>
  );
}
