import { useQuery } from "@tanstack/react-query";
import { Link, useParams } from "react-router-dom";

import { api, call } from "../api/client";
import { isTerminal, type Notice } from "../api/types";
import { ErrorAlert } from "../components/ErrorAlert";
import { useJobName } from "../components/JobLink";
import { RunNotices } from "../components/Notifications";
import { PipelineRun } from "../components/Pipeline";
import { RunCause, RunOrigin } from "../components/RunCause";
import { DeadlineMissed } from "../components/Runs";
import { StateText } from "../components/StateText";
import { duration, formatInstant } from "../lib/time";

const LIVE_MS = 2000;
const NOTICES_MS = 5000; // an ended run's notification due within a minute (a retry waits 15 s at least)
const LATER_MS = 30_000; // one due later

/**
 * How often to read an ended run again: while a notification is still to be delivered (not a
 * duration warning: an ended run's is dropped when due, as not needed).
 */
function noticesInterval(notices: readonly Notice[], now = Date.now()): number | false {
  const due = notices.filter((n) => n.state === "pending" && n.event !== "duration_warning").map((n) => Date.parse(n.due_at));
  if (due.length === 0) return false;
  return Math.min(...due) - now < 60_000 ? NOTICES_MS : LATER_MS;
}

/** One run (`/jobs/{job id}/runs/{run id}`): its state, attempts, why it started, its steps, its notifications. */
export function RunPage() {
  const { jobId = "", runId = "" } = useParams();
  const name = useJobName(jobId);
  const run = useQuery({
    queryKey: ["run", runId],
    queryFn: () => call(api.GET("/api/runs/{run_id}", { params: { path: { run_id: runId } } })),
    refetchInterval: (query) => {
      const data = query.state.data;
      if (!data || !isTerminal(data.state)) return LIVE_MS;
      return noticesInterval(data.notifications ?? []);
    },
  });
  const title = `Run of ${name ?? "job"}`;
  return (
    <>
      <p className="breadcrumbs">
        <span aria-hidden="true">← </span>
        <Link to={`/jobs/${jobId}`}>{name ?? "The job"}</Link>
      </p>
      <h1>{title}</h1>
      {run.isPending && <p>Loading…</p>}
      {run.isError && <ErrorAlert error={run.error} onRetry={() => void run.refetch()} />}
      {run.data && (
        <>
          <dl className="facts">
            <dt>Run id</dt>
            <dd>
              <code>{run.data.run_id}</code>
            </dd>
            <dt>Started by</dt>
            <dd>
              <RunOrigin run={run.data} />
            </dd>
            <dt>Scheduled for</dt>
            <dd>{formatInstant(run.data.scheduled_for)}</dd>
            <dt>State</dt>
            <dd>
              <StateText state={run.data.state} /> <DeadlineMissed at={run.data.deadline_missed_at} />
              {run.data.reason && run.data.reason !== run.data.state && <div className="muted small">{run.data.reason}</div>}
            </dd>
            <dt>Attempts</dt>
            <dd>
              {(run.data.attempts ?? []).length === 0 ? (
                "none yet"
              ) : (
                <ul className="attempts">
                  {(run.data.attempts ?? []).map((a) => (
                    <li key={a.number}>
                      #{a.number} {a.result ? <StateText state={a.result} /> : "running"}{" "}
                      <span className="muted">
                        launched {formatInstant(a.launched_at)}
                        {a.ended_at && `, took ${duration(a.started_at ?? a.launched_at, a.ended_at)}`}
                      </span>{" "}
                      {a.run_page_url && a.databricks_run_id != null && (
                        <a href={a.run_page_url} target="_blank" rel="noreferrer">
                          Databricks run {a.databricks_run_id}
                        </a>
                      )}
                    </li>
                  ))}
                </ul>
              )}
            </dd>
          </dl>
          <section aria-labelledby="cause-heading">
            <h2 id="cause-heading">Why it started</h2>
            <RunCause run={run.data} />
          </section>
          {run.data.steps && (
            <section aria-labelledby="steps-heading">
              <h2 id="steps-heading">Steps</h2>
              <PipelineRun run={run.data} />
            </section>
          )}
          {(run.data.notifications ?? []).length > 0 && (
            <section aria-labelledby="notifications-heading">
              <h2 id="notifications-heading">Notifications</h2>
              <RunNotices notices={run.data.notifications ?? []} />
            </section>
          )}
        </>
      )}
    </>
  );
}
