import { useQuery } from "@tanstack/react-query";
import { Link } from "react-router-dom";

import { api, call } from "../api/client";
import type { AfterTrigger, Job } from "../api/types";
import { scheduleInWords } from "../lib/cron";
import { inWords } from "../lib/duration";
import { afterInWords } from "../lib/triggers";
import { ErrorAlert } from "./ErrorAlert";
import { JobActions } from "./JobActions";
import { JobLink, JobLinks } from "./JobLink";
import { FireTimes } from "./Preview";
import { RunsTable } from "./Runs";

export function taskInWords(task: Job["task"]): string {
  if (task.kind === "pipeline") {
    const n = task.steps.length;
    return `Pipeline of ${n} ${n === 1 ? "step" : "steps"}: ${task.steps.map((s) => s.key).join(", ")}`;
  }
  if (task.kind === "databricks_job") {
    const params = Object.entries(task.parameters ?? {});
    return `Databricks job ${task.job_id}${params.length ? ` with ${params.map(([k, v]) => `${k}=${String(v)}`).join(", ")}` : ""}`;
  }
  const what = task.notebook_path
    ? `notebook ${task.notebook_path}`
    : task.python_file
      ? `Python file ${task.python_file}`
      : `wheel ${task.python_wheel?.package_name ?? ""}:${task.python_wheel?.entry_point ?? ""}`;
  const where = task.existing_cluster_id ? `on cluster ${task.existing_cluster_id}` : `on a new ${task.cluster?.spark_version ?? ""} cluster`;
  return `One-off run of ${what} ${where}`;
}

export function Policies({ job }: { job: Job }) {
  const retry = job.retry;
  const after = (job.triggers ?? []).filter((t): t is AfterTrigger => t.kind === "after");
  return (
    <dl className="facts">
      <dt>Schedule</dt>
      <dd>{scheduleInWords(job.schedule, job.triggers ?? [])}</dd>
      <dt>Task</dt>
      <dd>{taskInWords(job.task)}</dd>
      <dt>Retry</dt>
      <dd>
        {retry && retry.max_attempts > 1
          ? `up to ${retry.max_attempts} attempts, ${inWords(retry.initial_delay)} apart at first (×${retry.backoff_coefficient}, at most ${inWords(retry.max_delay)}), on ${retry.retry_on} failures`
          : "no retries"}
      </dd>
      <dt>Timeout</dt>
      <dd>{job.timeout ? inWords(job.timeout) : "none"}</dd>
      <dt>Overlap</dt>
      <dd>{job.overlap}</dd>
      <dt>Misfire</dt>
      <dd>{job.misfire}</dd>
      <dt>Priority</dt>
      <dd>{job.priority}</dd>
      <dt>Pool</dt>
      <dd>
        {job.pool ?? "default"}, {job.slots ?? 1} {(job.slots ?? 1) === 1 ? "slot" : "slots"} per run
      </dd>
      <dt>Deadline</dt>
      <dd>{job.deadline ? `${inWords(job.deadline)} after the scheduled time` : "none"}</dd>
      <dt>Waits for</dt>
      <dd>
        {after.length === 0
          ? "no other job"
          : after.map((t, i) => (
              <div key={i}>
                {afterInWords(t)}: <JobLinks ids={t.jobs} />
              </div>
            ))}
      </dd>
      {job.waited_on_by && (
        <>
          <dt>Waited on by</dt>
          <dd>
            {job.waited_on_by.length === 0
              ? "no other job"
              : job.waited_on_by.map((id, k) => (
                  <span key={id}>
                    {k > 0 && ", "}
                    <JobLink id={id} />
                  </span>
                ))}
          </dd>
        </>
      )}
    </dl>
  );
}

/** A job's details in place (the jobs table's expanded row). */
export function JobDetails({ jobId }: { jobId: string }) {
  const job = useQuery({
    queryKey: ["job", jobId],
    queryFn: () => call(api.GET("/api/jobs/{job_id}", { params: { path: { job_id: jobId } } })),
  });
  const runs = useQuery({
    queryKey: ["runs", jobId, 5],
    queryFn: () => call(api.GET("/api/jobs/{job_id}/runs", { params: { path: { job_id: jobId }, query: { limit: 5 } } })),
  });
  if (job.isPending) return <p>Loading…</p>;
  if (job.isError) return <ErrorAlert error={job.error} onRetry={() => void job.refetch()} />;
  const data = job.data;
  return (
    <div className="details">
      <div className="details-grid">
        <div>
          <Policies job={data} />
          {data.schedule && data.status !== "CANCELLED" && data.status !== "COMPLETED" && <FireTimes spec={data.schedule} />}
        </div>
        <div>
          <h3>Recent runs</h3>
          {runs.isError && <ErrorAlert error={runs.error} />}
          {runs.data && <RunsTable runs={runs.data.items} label={`Recent runs of ${data.name}`} jobName={data.name} pipeline={data.task.kind === "pipeline"} />}
        </div>
      </div>
      <JobActions job={data} />
      <Link to={`/jobs/${data.job_id}`}>Open {data.name}</Link>
    </div>
  );
}
