import { useMutation, useQuery } from "@tanstack/react-query";
import { Fragment, useState } from "react";
import { Link, useParams } from "react-router-dom";

import { api, call, messageOf } from "../api/client";
import { isTerminal, type Run } from "../api/types";
import { ErrorAlert } from "../components/ErrorAlert";
import { JobActions, useRefresh } from "../components/JobActions";
import { Policies } from "../components/JobDetails";
import { JobNotifications } from "../components/Notifications";
import { FireTimes } from "../components/Preview";
import { JobTriggers } from "../components/Triggers";
import { AuditList, RunsTable } from "../components/Runs";
import { useAnnounce } from "../components/Status";
import { type TemplateRef, valueText } from "../lib/templates";
import { formatInstant } from "../lib/time";
import { batchPath } from "./BatchesPage";
import { templatePath } from "./TemplatesPage";

/** "Made from template train-model v2", linked, with the values it was made with. */
export function FromTemplate({ template }: { template: TemplateRef }) {
  const values = Object.entries(template.parameters);
  return (
    <section className="from-template" aria-label="Template">
      <p>
        Made from template{" "}
        <Link to={templatePath(template.name, template.version)}>
          {template.name} v{template.version}
        </Link>
        {values.length === 0 && " (no parameters)"}
      </p>
      {values.length > 0 && (
        <dl className="facts" aria-label="Template parameters">
          {values.map(([name, value]) => (
            <Fragment key={name}>
              <dt>
                <code>{name}</code>
              </dt>
              <dd>{valueText(value)}</dd>
            </Fragment>
          ))}
        </dl>
      )}
    </section>
  );
}

const LIVE_MS = 1500;

export function JobPage() {
  const { jobId = "" } = useParams();
  const announce = useAnnounce();
  const refresh = useRefresh();
  const [actedAt, setActedAt] = useState(0);
  const path = { params: { path: { job_id: jobId } } };
  const job = useQuery({ queryKey: ["job", jobId], queryFn: () => call(api.GET("/api/jobs/{job_id}", path)) });
  // Follow the runs live while one is under way, one is due soon, or the user just acted.
  const runs = useQuery({
    queryKey: ["runs", jobId, 50],
    queryFn: () => call(api.GET("/api/jobs/{job_id}/runs", { params: { path: { job_id: jobId }, query: { limit: 50 } } })),
    enabled: job.isSuccess,
    refetchInterval: (query) => {
      const items = query.state.data?.items ?? [];
      const next = job.data?.next_fire_at ? Date.parse(job.data.next_fire_at) : Infinity;
      const busy = items.some((r) => !isTerminal(r.state));
      const soon = next - Date.now() < 2 * 60_000;
      return busy || soon || Date.now() - actedAt < 15_000 ? LIVE_MS : 15_000;
    },
  });
  const audit = useQuery({
    queryKey: ["audit", jobId],
    queryFn: () => call(api.GET("/api/jobs/{job_id}/audit", { params: { path: { job_id: jobId }, query: { limit: 50 } } })),
    enabled: job.isSuccess,
  });
  const retry = useMutation({
    mutationFn: (run: Run) => call(api.POST("/api/runs/{run_id}/retry", { params: { path: { run_id: run.run_id } } })),
    onSuccess: (run) => {
      announce(`Retrying: attempt ${run.attempt} of the run scheduled for ${formatInstant(run.scheduled_for)}`);
      setActedAt(Date.now());
      void refresh();
    },
    onError: (err) => announce(messageOf(err)),
  });

  if (job.isPending) return <p>Loading…</p>;
  if (job.isError)
    return (
      <>
        <h1>Job</h1>
        <ErrorAlert error={job.error} onRetry={() => void job.refetch()} />
      </>
    );
  const data = job.data;
  return (
    <>
      <h1>{data.name}</h1>
      <p className="muted">
        <span className={`badge badge-${data.status}`}>{data.status}</span> · {data.job_type} · job id <code>{data.job_id}</code> · next run{" "}
        {data.next_fire_at && data.schedule
          ? `${formatInstant(data.next_fire_at)} (${formatInstant(data.next_fire_at, data.schedule.timezone)})`
          : "none"}
      </p>
      {data.description && <p>{data.description}</p>}
      {data.template && <FromTemplate template={data.template} />}
      {data.batch && (
        <p className="note">
          This job is a batch: <Link to={batchPath(data.job_id)}>follow it on its batch page</Link> (its points, their
          progress, cancel and retry of the failed ones).
        </p>
      )}
      <JobActions job={data} />
      <div className="details-grid">
        <Policies job={data} />
        {data.schedule && data.status !== "CANCELLED" && data.status !== "COMPLETED" && <FireTimes spec={data.schedule} />}
      </div>
      <JobTriggers job={data} />
      <JobNotifications job={data} />
      <section aria-labelledby="runs-heading">
        <h2 id="runs-heading">Runs</h2>
        {retry.isError && <ErrorAlert error={retry.error} />}
        {runs.isError && <ErrorAlert error={runs.error} onRetry={() => void runs.refetch()} />}
        {runs.data && (
          <RunsTable
            runs={runs.data.items}
            label="Runs"
            jobName={data.name}
            pipeline={data.task.kind === "pipeline"}
            onRetry={(run) => retry.mutate(run)} retrying={retry.isPending ? (retry.variables?.run_id ?? null) : null} />
        )}
      </section>
      <section aria-labelledby="audit-heading">
        <h2 id="audit-heading">Audit</h2>
        {audit.isError && <ErrorAlert error={audit.error} />}
        {audit.data && <AuditList entries={audit.data.items} />}
      </section>
    </>
  );
}
