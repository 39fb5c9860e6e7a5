import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { Fragment, useState } from "react";

import { api, call, messageOf } from "../api/client";
import { JOB_TYPES, type JobStatus, type JobSummary, type JobType, STATUSES } from "../api/types";
import { CancelDialog, useRefresh } from "../components/JobActions";
import { ErrorAlert } from "../components/ErrorAlert";
import { JobDetails } from "../components/JobDetails";
import { StateText } from "../components/StateText";
import { useDebounced } from "../components/Preview";
import { useAnnounce } from "../components/Status";
import { scheduleInWords } from "../lib/cron";
import { formatInstant } from "../lib/time";

type SortKey = "name" | "next_fire_at" | "created_at" | "updated_at";
type Sort = SortKey | `-${SortKey}`;
const PAGE = 50;

function SortHeader({ label, field, sort, onSort }: { label: string; field: SortKey; sort: Sort; onSort: (s: Sort) => void }) {
  const active = sort === field || sort === `-${field}`;
  const descending = sort === `-${field}`;
  return (
    <th scope="col" aria-sort={active ? (descending ? "descending" : "ascending") : "none"}>
      <button type="button" className="sort" onClick={() => onSort(active && !descending ? `-${field}` : field)}>
        {label}
        <span aria-hidden="true">{active ? (descending ? " ▼" : " ▲") : ""}</span>
      </button>
    </th>
  );
}

export function JobsPage() {
  const announce = useAnnounce();
  const refresh = useRefresh();
  const [jobType, setJobType] = useState<JobType | "">("");
  const [status, setStatus] = useState<JobStatus | "">("");
  const [tag, setTag] = useState("");
  const [text, setText] = useState("");
  const [sort, setSort] = useState<Sort>("-created_at");
  const [tokens, setTokens] = useState<(string | null)[]>([null]); // continuation of each page seen
  const [open, setOpen] = useState<string | null>(null);
  const [selected, setSelected] = useState<Map<string, JobSummary>>(new Map());
  const [cancelling, setCancelling] = useState(false);
  const [bulkBusy, setBulkBusy] = useState(false);
  const q = useDebounced(text.trim(), 300);
  const tagFilter = useDebounced(tag.trim().toLowerCase(), 300);
  const continuation = tokens[tokens.length - 1] ?? null;
  const query = {
    ...(jobType ? { job_type: jobType } : {}),
    ...(status ? { status } : {}),
    ...(tagFilter ? { tag: tagFilter } : {}),
    ...(q ? { q } : {}),
    sort,
    limit: PAGE,
    ...(continuation ? { continuation } : {}),
  };
  const jobs = useQuery({
    queryKey: ["jobs", query],
    queryFn: () => call(api.GET("/api/jobs", { params: { query } })),
    placeholderData: keepPreviousData,
  });
  const restart = <T,>(setter: (v: T) => void) => (value: T) => {
    setter(value);
    setTokens([null]);
  };
  const items = jobs.data?.items ?? [];
  const toggle = (job: JobSummary, on: boolean) =>
    setSelected((current) => {
      const next = new Map(current);
      if (on) next.set(job.job_id, job);
      else next.delete(job.job_id);
      return next;
    });

  async function bulk(what: "pause" | "resume") {
    const chosen = [...selected.values()];
    setBulkBusy(true);
    const results = await Promise.allSettled(
      chosen.map((job) =>
        call(api.POST(what === "pause" ? "/api/jobs/{job_id}/pause" : "/api/jobs/{job_id}/resume", { params: { path: { job_id: job.job_id } } })),
      ),
    );
    setBulkBusy(false);
    const failed = results.flatMap((r, i) => (r.status === "rejected" ? [`${chosen[i]?.name}: ${messageOf(r.reason)}`] : []));
    const done = chosen.length - failed.length;
    const verb = what === "pause" ? "Paused" : "Resumed";
    announce(`${verb} ${done} ${done === 1 ? "job" : "jobs"}${failed.length ? `; not changed: ${failed.join("; ")}` : ""}`);
    setSelected(new Map());
    void refresh();
  }

  return (
    <>
      <h1>Jobs</h1>
      <div className="filters">
        <div className="field">
          <label htmlFor="filter-text">Search jobs</label>
          <input id="filter-text" type="search" value={text} onChange={(e) => { setText(e.target.value); setTokens([null]); }} placeholder="name, description or tag" />
        </div>
        <div className="field">
          <label htmlFor="filter-type">Type</label>
          <select id="filter-type" value={jobType} onChange={(e) => restart(setJobType)(e.target.value as JobType | "")}>
            <option value="">All</option>
            {JOB_TYPES.map((t) => (
              <option key={t.value} value={t.value}>
                {t.label}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="filter-status">Status</label>
          <select id="filter-status" value={status} onChange={(e) => restart(setStatus)(e.target.value as JobStatus | "")}>
            <option value="">All</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="filter-tag">Tag</label>
          <input id="filter-tag" value={tag} onChange={(e) => { setTag(e.target.value); setTokens([null]); }} />
        </div>
      </div>

      {selected.size > 0 && (
        <div className="bulk" role="group" aria-label="Selected jobs">
          <span>{selected.size} selected</span>
          <button type="button" onClick={() => void bulk("pause")} disabled={bulkBusy}>
            Pause selected
          </button>
          <button type="button" onClick={() => void bulk("resume")} disabled={bulkBusy}>
            Resume selected
          </button>
          <button type="button" className="danger" onClick={() => setCancelling(true)} disabled={bulkBusy}>
            Cancel selected
          </button>
        </div>
      )}
      <CancelDialog jobs={cancelling ? [...selected.values()] : []} onClose={() => setCancelling(false)} onDone={() => setSelected(new Map())} />

      {jobs.isError && <ErrorAlert error={jobs.error} onRetry={() => void jobs.refetch()} />}
      <div className="table-wrap">
        <table aria-label="Jobs" className="jobs" aria-busy={jobs.isFetching}>
          <thead>
            <tr>
              <th scope="col">
                <span className="visually-hidden">Select</span>
              </th>
              <SortHeader label="Name" field="name" sort={sort} onSort={restart(setSort)} />
              <th scope="col" className="wide">Type</th>
              <th scope="col">Schedule</th>
              <th scope="col">Status</th>
              <SortHeader label="Next run" field="next_fire_at" sort={sort} onSort={restart(setSort)} />
              <th scope="col" className="wide">Last run</th>
              <th scope="col" className="wide">Tags</th>
              <SortHeader label="Created" field="created_at" sort={sort} onSort={restart(setSort)} />
              <SortHeader label="Updated" field="updated_at" sort={sort} onSort={restart(setSort)} />
            </tr>
          </thead>
          <tbody>
            {items.map((job) => (
              <Fragment key={job.job_id}>
                <tr>
                  <td>
                    <input type="checkbox" aria-label={`Select ${job.name}`} checked={selected.has(job.job_id)} onChange={(e) => toggle(job, e.target.checked)} />
                  </td>
                  <td>
                    <button
                      type="button"
                      className="disclosure"
                      aria-expanded={open === job.job_id}
                      aria-label={`Details for ${job.name}`}
                      onClick={() => setOpen(open === job.job_id ? null : job.job_id)}
                    >
                      <span aria-hidden="true">{open === job.job_id ? "▾" : "▸"}</span>
                    </button>{" "}
                    <span className="name">{job.name}</span>
                  </td>
                  <td className="wide">{JOB_TYPES.find((t) => t.value === job.job_type)?.label ?? job.job_type}</td>
                  <td>{job.batch ? "A batch: runs its points" : scheduleInWords(job.schedule, job.triggers ?? [])}</td>
                  <td>
                    <span className={`badge badge-${job.status}`}>{job.status}</span>
                  </td>
                  <td>
                    {job.next_fire_at ? (
                      <>
                        {formatInstant(job.next_fire_at)}
                        <div className="muted small">{formatInstant(job.next_fire_at, job.schedule?.timezone ?? "UTC")}</div>
                      </>
                    ) : (
                      "—"
                    )}
                  </td>
                  <td className="wide">{job.last_run_state ? <StateText state={job.last_run_state} /> : "—"}</td>
                  <td className="wide">{job.tags.join(", ")}</td>
                  <td className="small">{formatInstant(job.created_at)}</td>
                  <td className="small">{formatInstant(job.updated_at)}</td>
                </tr>
                {open === job.job_id && (
                  <tr className="details-row">
                    <td colSpan={10}>
                      <JobDetails jobId={job.job_id} />
                    </td>
                  </tr>
                )}
              </Fragment>
            ))}
          </tbody>
        </table>
      </div>
      {jobs.isSuccess && items.length === 0 && <p className="muted">No jobs match.</p>}
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
    </>
  );
}
