import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "react-router-dom";

import { api, call } from "../api/client";
import { ErrorAlert } from "../components/ErrorAlert";
import { StateText } from "../components/StateText";
import { TableWrap } from "../components/TableWrap";
import { formatInstant } from "../lib/time";

/** A batch's page: `/batches/{batch id}` (the id of its job too). */
export const batchPath = (batchId: string) => `/batches/${encodeURIComponent(batchId)}`;

/** The tag every batch's job has (`/api/jobs?tag=batch`). */
export const BATCH_TAG = "batch";

const PAGE = 50;

/** The tenant's batches, newest first: their jobs, tagged `batch`. */
export function BatchesPage() {
  const [tokens, setTokens] = useState<(string | null)[]>([null]);
  const continuation = tokens[tokens.length - 1] ?? null;
  const query = { tag: BATCH_TAG, sort: "-created_at" as const, limit: PAGE, ...(continuation ? { continuation } : {}) };
  const jobs = useQuery({
    queryKey: ["jobs", query],
    queryFn: () => call(api.GET("/api/jobs", { params: { query } })),
    placeholderData: keepPreviousData,
    refetchInterval: 15_000,
  });
  const items = jobs.data?.items ?? [];
  return (
    <>
      <h1>Batches</h1>
      <p className="muted">
        A batch runs a template once per point of a grid of parameter values. Open a template and choose &ldquo;Run a
        batch&rdquo; to start one.
      </p>
      {jobs.isError && <ErrorAlert error={jobs.error} onRetry={() => void jobs.refetch()} />}
      {jobs.isPending && <p>Loading…</p>}
      {jobs.isSuccess && items.length === 0 && tokens.length === 1 && (
        <div className="empty">
          <p>
            <strong>No batches yet.</strong>
          </p>
          <p>
            Start one from a <Link to="/templates">template</Link>.
          </p>
        </div>
      )}
      {items.length > 0 && (
        <TableWrap label="Batches, scrolls sideways">
          <table aria-label="Batches" className="batches" aria-busy={jobs.isFetching}>
            <thead>
              <tr>
                <th scope="col">Batch</th>
                <th scope="col">Created</th>
                <th scope="col">State</th>
                <th scope="col">Job</th>
              </tr>
            </thead>
            <tbody>
              {items.map((job) => (
                <tr key={job.job_id}>
                  <th scope="row" className="name">
                    <Link to={batchPath(job.job_id)}>{job.name}</Link>
                  </th>
                  <td className="small">{formatInstant(job.created_at)}</td>
                  <td>{job.last_run_state ? <StateText state={job.last_run_state} /> : <span className="muted">—</span>}</td>
                  <td>
                    <span className={`badge badge-${job.status}`}>{job.status}</span>{" "}
                    <Link to={`/jobs/${encodeURIComponent(job.job_id)}`} className="small">
                      job<span className="visually-hidden"> of {job.name}</span>
                    </Link>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
      {(tokens.length > 1 || jobs.data?.continuation) && (
        <nav className="pager" aria-label="Pages">
          <button type="button" onClick={() => setTokens((t) => t.slice(0, -1))} disabled={tokens.length === 1}>
            Previous page
          </button>
          <span>Page {tokens.length}</span>
          <button
            type="button"
            onClick={() => jobs.data?.continuation && setTokens((t) => [...t, jobs.data?.continuation ?? null])}
            disabled={!jobs.data?.continuation}
          >
            Next page
          </button>
        </nav>
      )}
    </>
  );
}
