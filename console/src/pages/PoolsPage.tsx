import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useRef, useState } from "react";

import { api, call } from "../api/client";
import { type ClassWait, PRIORITIES, type Pool } from "../api/types";
import { ErrorAlert } from "../components/ErrorAlert";
import { emptyPool, PoolForm, poolFormOf, type PoolFormState } from "../components/PoolForm";
import { formatInstant, formatWait } from "../lib/time";

const POLL_MS = 5000;

/** "2 · oldest 4m 10s", or "0". */
export function waitingInWords(wait: ClassWait | undefined): string {
  if (!wait || wait.length === 0) return "0";
  return `${wait.length} · oldest ${formatWait(wait.oldest_wait)}`;
}

function ByPriority({ pool }: { pool: Pool }) {
  const waiting = PRIORITIES.filter((p) => (pool.queues[p.value]?.length ?? 0) > 0);
  if (waiting.length === 0) return <span className="muted">none</span>;
  return (
    <ul className="plain">
      {waiting.map((p) => (
        <li key={p.value} className="nowrap">
          {p.label}: {waitingInWords(pool.queues[p.value])}
        </li>
      ))}
    </ul>
  );
}

function PoolRow({ pool, onChange }: { pool: Pool; onChange?: (pool: Pool) => void }) {
  const bounded = pool.slots != null;
  return (
    <tr>
      <th scope="row" className="name">
        {pool.name}
      </th>
      <td>{bounded ? pool.slots : "unbounded"}</td>
      <td>{pool.tenant_limit ?? "none"}</td>
      <td>{pool.policy}</td>
      <td className="nowrap">{bounded ? `${pool.used}/${pool.slots}` : "—"}</td>
      <td>{pool.running}</td>
      <td>{pool.pending}</td>
      <td>
        <ByPriority pool={pool} />
      </td>
      <td className="muted small changed">
        {pool.updated_at ? `${formatInstant(pool.updated_at)}${pool.updated_by ? ` by ${pool.updated_by}` : ""}` : "never configured"}
      </td>
      {onChange && (
        <td>
          <button type="button" onClick={() => onChange(pool)}>
            Change<span className="visually-hidden"> {pool.name}</span>
          </button>
        </td>
      )}
    </tr>
  );
}

export function PoolsTable({ pools, onChange }: { pools: Pool[]; onChange?: (pool: Pool) => void }) {
  return (
    <div className="table-wrap">
      <table aria-label="Pools" className="pools">
        <thead>
          <tr>
            <th scope="col">Pool</th>
            <th scope="col">Slots</th>
            <th scope="col">Tenant limit</th>
            <th scope="col">Policy</th>
            <th scope="col">Used</th>
            <th scope="col">Running</th>
            <th scope="col">Waiting</th>
            <th scope="col">Waiting by priority</th>
            <th scope="col">Changed</th>
            {onChange && <th scope="col">Action</th>}
          </tr>
        </thead>
        <tbody>
          {pools.map((pool) => (
            <PoolRow key={pool.name} pool={pool} onChange={onChange} />
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function PoolsPage() {
  const client = useQueryClient();
  const me = useQuery({ queryKey: ["me"], queryFn: () => call(api.GET("/api/me")), staleTime: Infinity });
  const pools = useQuery({ queryKey: ["pools"], queryFn: () => call(api.GET("/api/pools")), refetchInterval: POLL_MS });
  const [initial, setInitial] = useState<{ form: PoolFormState; generation: number }>({ form: emptyPool(), generation: 0 });
  const formArea = useRef<HTMLDivElement>(null);
  const admin = me.data?.pools_admin ?? false;
  const items = pools.data?.items ?? [];

  const change = (pool: Pool) => {
    setInitial((current) => ({ form: poolFormOf(pool), generation: current.generation + 1 }));
    // The name is filled in: the slots are what one usually comes to change.
    window.setTimeout(() => formArea.current?.querySelector<HTMLInputElement>("input[name='slots']")?.focus(), 0);
  };

  return (
    <>
      <h1>Pools</h1>
      <p className="muted">
        A pool bounds how many runs hold Databricks capacity at once; a run that finds no free slot waits in its pool's
        queue (the Queue page lists yours). Counts cover every tenant.
      </p>
      {pools.isError && <ErrorAlert error={pools.error} onRetry={() => void pools.refetch()} />}
      {pools.isPending && <p>Loading…</p>}
      {pools.data && <PoolsTable pools={items} onChange={admin ? change : undefined} />}
      {admin ? (
        <div ref={formArea}>
          <PoolForm
            key={initial.generation}
            initial={initial.form}
            existing={items.map((p) => p.name)}
            onSaved={() => {
              void client.invalidateQueries({ queryKey: ["pools"] });
              void client.invalidateQueries({ queryKey: ["queue"] });
            }}
          />
        </div>
      ) : (
        me.data && <p className="muted">Only a pools admin may create or change pools.</p>
      )}
    </>
  );
}
