import { useQuery } from "@tanstack/react-query";
import { Fragment, useState } from "react";
import { Link } from "react-router-dom";

import { api, call } from "../api/client";
import { type Attempt, type AuditEntry, isTerminal, type Run } from "../api/types";
import { hideUrls } from "../lib/notifications";
import { duration, formatEstimate, formatInstant } from "../lib/time";
import { hasCauseDetails, replayInWords } from "../lib/triggers";
import { ChangePriority } from "./ChangePriority";
import { runPath } from "./JobLink";
import { CancelPipelineRun, PipelineRun } from "./Pipeline";
import { RunCause, RunOrigin } from "./RunCause";
import { StateText } from "./StateText";

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
      <span>#{attempt.number}</span> {attempt.result ? <StateText state={attempt.result} /> : <span className="state state-RUNNING">running</span>}
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

/**
 * Which pipeline runs show their steps at first: the newest one, and any still under way (the
 * others behind their "Steps" button, so that a long history does not read every step's run).
 */
function openAtFirst(runs: Run[], isPipeline: (run: Run) => boolean): Set<string> {
  const pipelines = runs.filter((r) => isPipeline(r) && (r.steps ?? []).length > 0);
  return new Set(pipelines.filter((r, i) => i === 0 || !isTerminal(r.state)).map((r) => r.run_id));
}

/**
 * A job's runs: every scheduled time, what happened to it, each attempt; Retry on a failed run. A
 * pipeline run (`pipeline`: the job's task is one; or the run has steps) shows its steps in a row
 * of their own, offers "Cancel run" while under way and never Retry (the API refuses it).
 */
export function RunsTable({
  runs,
  label,
  jobName,
  onRetry,
  retrying,
  pipeline = false,
}: {
  runs: Run[];
  label: string;
  jobName: string;
  onRetry?: (run: Run) => void;
  retrying?: string | null;
  pipeline?: boolean;
}) {
  const isPipeline = (run: Run) => run.steps != null || (pipeline && run.step == null);
  const [toggled, setToggled] = useState<Record<string, boolean>>({});
  const [causeOpen, setCauseOpen] = useState<Record<string, boolean>>({});
  if (runs.length === 0) return <p className="muted">No runs yet.</p>;
  const first = openAtFirst(runs, isPipeline);
  const isOpen = (run: Run) => toggled[run.run_id] ?? first.has(run.run_id);
  const cancellable = (run: Run) => isPipeline(run) && !isTerminal(run.state) && run.state !== "CANCELLING";
  const retryable = (run: Run) => onRetry !== undefined && !isPipeline(run) && (run.state === "FAILED" || run.state === "TIMED_OUT");
  const actions = runs.some((r) => retryable(r) || r.state === "QUEUED" || cancellable(r)) || (onRetry !== undefined && !pipeline);
  const columns = actions ? 5 : 4;
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
          {runs.map((run) => {
            const steps = run.steps ?? [];
            const open = isOpen(run) && steps.length > 0;
            const stepsId = `steps-${run.run_id}`;
            const details = hasCauseDetails(run);
            const showCause = details && (causeOpen[run.run_id] ?? false);
            const causeId = `cause-${run.run_id}`;
            const replay = replayInWords(run, runs);
            // a replay's reason ("replay of … by …") goes with why it started, not under its state
            const reason = run.reason && run.reason !== replay ? run.reason : null;
            return (
              <Fragment key={run.run_id}>
                <tr>
                  <td>{formatInstant(run.scheduled_for)}</td>
                  <td className="origin">
                    <RunOrigin run={run} />
                    {replay && <div className="muted small">{replay}</div>}
                    {details && (
                      <div>
                        <button
                          type="button"
                          className="link-button steps-toggle"
                          aria-expanded={showCause}
                          aria-controls={showCause ? causeId : undefined}
                          onClick={() => setCauseOpen((t) => ({ ...t, [run.run_id]: !showCause }))}
                        >
                          <span aria-hidden="true">{showCause ? "▾" : "▸"} </span>
                          Details<span className="visually-hidden"> of the run scheduled for {formatInstant(run.scheduled_for)}</span>
                        </button>
                      </div>
                    )}
                  </td>
                  <td>
                    <StateText state={run.state} /> <DeadlineMissed at={run.deadline_missed_at} />
                    {run.state === "QUEUED" && <QueuePlace run={run} />}
                    {/* a QUEUED run's reason only says what the line above says; a pipeline's result is its state */}
                    {reason && run.state !== "QUEUED" && reason !== run.state && <div className="muted small">{reason}</div>}
                    {run.deadline_at && !run.deadline_missed_at && !isTerminal(run.state) && (
                      <div className="muted small">due by {formatInstant(run.deadline_at)}</div>
                    )}
                    {steps.length > 0 && (
                      <div>
                        <button
                          type="button"
                          className="link-button steps-toggle"
                          aria-expanded={open}
                          aria-controls={open ? stepsId : undefined}
                          onClick={() => setToggled((t) => ({ ...t, [run.run_id]: !open }))}
                        >
                          <span aria-hidden="true">{open ? "▾" : "▸"} </span>
                          Steps<span className="visually-hidden"> of the run scheduled for {formatInstant(run.scheduled_for)}</span>
                        </button>
                      </div>
                    )}
                  </td>
                  <td>
                    {(run.attempts ?? []).length > 0 ? (
                      <ul className="attempts">
                        {(run.attempts ?? []).map((a) => (
                          <AttemptLine key={a.number} attempt={a} />
                        ))}
                      </ul>
                    ) : steps.length > 0 ? (
                      <span className="muted">
                        {steps.length} {steps.length === 1 ? "step" : "steps"}
                      </span>
                    ) : (
                      <span className="muted">—</span>
                    )}
                  </td>
                  {actions && (
                    <td>
                      {retryable(run) && (
                        <button type="button" className="primary" onClick={() => onRetry?.(run)} disabled={retrying === run.run_id}>
                          Retry
                        </button>
                      )}
                      {run.state === "QUEUED" && <ChangePriority run={run} what={jobName} />}
                      {cancellable(run) && <CancelPipelineRun run={run} jobName={jobName} />}
                    </td>
                  )}
                </tr>
                {showCause && (
                  <tr className="cause-row" id={causeId}>
                    <td colSpan={columns}>
                      <div className="cause-box">
                        <RunCause run={run} />
                        <Link to={runPath(run.job_id, run.run_id)}>
                          Open run<span className="visually-hidden"> scheduled for {formatInstant(run.scheduled_for)}</span>
                        </Link>
                      </div>
                    </td>
                  </tr>
                )}
                {open && (
                  <tr className="pipeline-row" id={stepsId}>
                    <td colSpan={columns}>
                      <PipelineRun run={run} />
                    </td>
                  </tr>
                )}
              </Fragment>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

const show = (value: unknown) => (value === undefined || value === null ? "—" : typeof value === "string" ? value : JSON.stringify(value));

/** A notification's URL is shown as its host only (it may hold a token). */
const hidden = (field: string, value: unknown) => (field.startsWith("definition.notifications") ? hideUrls(value) : value);

function Diff({ entry }: { entry: AuditEntry }) {
  return (
    <ul className="diff">
      {entry.changes.map((change) => (
        <li key={change.field}>
          <code>{change.field.replace(/^definition\./, "")}</code>: <del>{show(hidden(change.field, change.before))}</del> →{" "}
          <ins>{show(hidden(change.field, change.after))}</ins>
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
