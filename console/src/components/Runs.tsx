import type { Attempt, AuditEntry, Run } from "../api/types";
import { duration, formatInstant } from "../lib/time";

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
  onRetry,
  retrying,
}: {
  runs: Run[];
  label: string;
  onRetry?: (run: Run) => void;
  retrying?: string | null;
}) {
  if (runs.length === 0) return <p className="muted">No runs yet.</p>;
  return (
    <div className="table-wrap">
      <table aria-label={label} className="runs">
        <thead>
          <tr>
            <th scope="col">Scheduled for</th>
            <th scope="col">Trigger</th>
            <th scope="col">State</th>
            <th scope="col">Attempts</th>
            {onRetry && <th scope="col">Action</th>}
          </tr>
        </thead>
        <tbody>
          {runs.map((run) => (
            <tr key={run.run_id}>
              <td>{formatInstant(run.scheduled_for)}</td>
              <td>{run.trigger}</td>
              <td>
                <span className={`state state-${run.state}`}>{run.state}</span>
                {run.reason && <div className="muted small">{run.reason}</div>}
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
              {onRetry && (
                <td>
                  {(run.state === "FAILED" || run.state === "TIMED_OUT") && (
                    <button type="button" className="primary" onClick={() => onRetry(run)} disabled={retrying === run.run_id}>
                      Retry
                    </button>
                  )}
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
