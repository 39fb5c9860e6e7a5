import { useQuery } from "@tanstack/react-query";
import { Link } from "react-router-dom";

import { api, call } from "../api/client";

/** A job, read once and cached (for its name): undefined until known. */
export function useJobName(id: string): string | undefined {
  const job = useQuery({
    queryKey: ["job", id],
    queryFn: () => call(api.GET("/api/jobs/{job_id}", { params: { path: { job_id: id } } })),
    enabled: id !== "",
  });
  return job.data?.name;
}

/** A link to another job, by its name once known. */
export function JobLink({ id }: { id: string }) {
  return <Link to={`/jobs/${id}`}>{useJobName(id) ?? id}</Link>;
}

/** Links to several jobs: "prepare, load". */
export function JobLinks({ ids }: { ids: readonly string[] }) {
  return (
    <>
      {ids.map((id, k) => (
        <span key={id}>
          {k > 0 && ", "}
          <JobLink id={id} />
        </span>
      ))}
    </>
  );
}

/** A run's page: `/jobs/{job id}/runs/{run id}`. */
export const runPath = (jobId: string, runId: string) => `/jobs/${encodeURIComponent(jobId)}/runs/${encodeURIComponent(runId)}`;
