import { useQueries, useQuery } from "@tanstack/react-query";
import { Link, useSearchParams } from "react-router-dom";

import { api, call } from "../api/client";
import { PRIORITIES, type Queue, type QueuedRun } from "../api/types";
import { ChangePriority } from "../components/ChangePriority";
import { ErrorAlert } from "../components/ErrorAlert";
import { Field } from "../components/Field";
import { formatEstimate, formatInstant, formatWait } from "../lib/time";

const POLL_MS = 3000;

function Totals({ queue }: { queue: Queue }) {
  return (
    <dl className="totals">
      <div>
        <dt>Running</dt>
        <dd>{queue.running}</dd>
      </div>
      <div>
        <dt>Waiting</dt>
        <dd>{queue.pending}</dd>
      </div>
      <div>
        <dt>Yours waiting</dt>
        <dd>{queue.items.length}</dd>
      </div>
    </dl>
  );
}

export function ClassesTable({ queue }: { queue: Queue }) {
  return (
    <div className="table-wrap">
      <table aria-label="Waiting by priority" className="classes">
        <thead>
          <tr>
            <th scope="col">Priority</th>
            <th scope="col">Waiting</th>
            <th scope="col">Average wait</th>
            <th scope="col">Oldest wait</th>
          </tr>
        </thead>
        <tbody>
          {PRIORITIES.map((p) => {
            const wait = queue.queues[p.value];
            const none = !wait || wait.length === 0;
            return (
              <tr key={p.value}>
                <th scope="row">{p.label}</th>
                <td>{wait?.length ?? 0}</td>
                <td>{none ? "—" : formatWait(wait.avg_wait)}</td>
                <td>{none ? "—" : formatWait(wait.oldest_wait)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function Deadline({ at }: { at: string | null }) {
  if (!at) return <span className="muted">none</span>;
  const passed = Date.parse(at) < Date.now();
  return (
    <>
      {formatInstant(at)}
      {passed && (
        <>
          {" "}
          <span className="badge badge-missed">Deadline passed</span>
        </>
      )}
    </>
  );
}

export function WaitingRuns({ items, names }: { items: QueuedRun[]; names: Record<string, string> }) {
  if (items.length === 0) return <p className="muted">None of your runs is waiting for a slot.</p>;
  return (
    <div className="table-wrap">
      <table aria-label="Your waiting runs" className="waiting">
        <thead>
          <tr>
            <th scope="col">Position</th>
            <th scope="col">Job</th>
            <th scope="col">Pool</th>
            <th scope="col">Priority</th>
            <th scope="col">Waited</th>
            <th scope="col">Estimated start</th>
            <th scope="col">Deadline</th>
            <th scope="col">Action</th>
          </tr>
        </thead>
        <tbody>
          {items.map((run) => {
            const name = names[run.job_id] ?? run.job_id;
            return (
              <tr key={run.run_id}>
                <td>
                  <strong>{run.queue_position}</strong>
                  {run.slots > 1 && <span className="muted small"> ({run.slots} slots)</span>}
                </td>
                <td className="name">
                  <Link to={`/jobs/${run.job_id}`}>{name}</Link>
                  {run.tenant && <div className="muted small">{run.tenant}</div>}
                </td>
                <td>{run.pool}</td>
                <td>{run.priority}</td>
                <td className="nowrap">{formatWait(run.wait)}</td>
                <td className="nowrap">
                  {formatEstimate(run.estimated_start_at)}
                  {run.estimated_start_at && <span className="visually-hidden"> ({formatInstant(run.estimated_start_at)})</span>}
                </td>
                <td>
                  <Deadline at={run.deadline_at} />
                </td>
                <td>
                  <ChangePriority run={run} what={name} />
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

export function QueuePage() {
  const [params, setParams] = useSearchParams();
  const pool = params.get("pool") ?? "";
  const pools = useQuery({ queryKey: ["pools"], queryFn: () => call(api.GET("/api/pools")) });
  const queue = useQuery({
    queryKey: ["queue", pool],
    queryFn: () => call(api.GET("/api/queue", { params: { query: pool ? { pool } : {} } })),
    refetchInterval: POLL_MS,
  });
  const items = queue.data?.items ?? [];
  const jobIds = [...new Set(items.map((r) => r.job_id))];
  // The queue names jobs by id: their names come from the jobs themselves (cached, shared with the job pages).
  const jobs = useQueries({
    queries: jobIds.map((id) => ({
      queryKey: ["job", id],
      queryFn: () => call(api.GET("/api/jobs/{job_id}", { params: { path: { job_id: id } } })),
      staleTime: 60_000,
    })),
  });
  const names: Record<string, string> = {};
  jobs.forEach((j, i) => {
    const id = jobIds[i];
    if (id && j.data) names[id] = j.data.name;
  });
  const options = (pools.data?.items ?? []).map((p) => p.name);
  if (pool && !options.includes(pool)) options.push(pool);

  return (
    <>
      <h1>Queue</h1>
      <div className="filters">
        <Field label="Pool" hint={pools.isError ? "The pools could not be listed." : undefined}>
          {(p) => (
            <select
              {...p}
              value={pool}
              onChange={(e) => setParams(e.target.value ? { pool: e.target.value } : {}, { replace: true })}
            >
              <option value="">All pools</option>
              {options.map((name) => (
                <option key={name} value={name}>
                  {name}
                </option>
              ))}
            </select>
          )}
        </Field>
      </div>
      {queue.isError && <ErrorAlert error={queue.error} onRetry={() => void queue.refetch()} />}
      {queue.isPending && <p>Loading…</p>}
      {queue.data && (
        <>
          <Totals queue={queue.data} />
          <section aria-labelledby="classes-heading">
            <h2 id="classes-heading">Waiting by priority</h2>
            <p className="muted small">Every tenant's runs{pool ? ` in pool ${pool}` : ", all pools together"}.</p>
            <ClassesTable queue={queue.data} />
          </section>
          <section aria-labelledby="yours-heading">
            <h2 id="yours-heading">Your waiting runs</h2>
            <p className="muted small">In the order each pool will start them; position 1 goes next in its pool.</p>
            <WaitingRuns items={items} names={names} />
          </section>
        </>
      )}
    </>
  );
}
