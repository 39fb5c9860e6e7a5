import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Fragment, useState } from "react";
import { Link, useParams } from "react-router-dom";

import { api, call } from "../api/client";
import { isTerminal } from "../api/types";
import { Dialog } from "../components/Dialog";
import { ErrorAlert } from "../components/ErrorAlert";
import { runPath } from "../components/JobLink";
import { StateText } from "../components/StateText";
import { useAnnounce } from "../components/Status";
import { TableWrap } from "../components/TableWrap";
import {
  type Batch,
  type BatchCounts,
  type BatchPoint,
  canRetryFailed,
  endedCount,
  POINT_STATES,
  type PointState,
  pointColumns,
  splitColumns,
} from "../lib/batches";
import { valueText } from "../lib/templates";
import { formatInstant } from "../lib/time";
import { templatePath } from "./TemplatesPage";

const LIVE_MS = 3000;
const SHOWN = 100; // points shown at first, and added by "Show more"

/** The points by state: a bar (its parts drawn, not read) and the counts in words. */
function Progress({ counts, size }: { counts: BatchCounts; size: number }) {
  const ended = endedCount(counts);
  return (
    <section aria-labelledby="progress-heading">
      <h2 id="progress-heading">Progress</h2>
      <p>
        <strong>
          {ended} of {size}
        </strong>{" "}
        {size === 1 ? "point" : "points"} ended
      </p>
      <div className="batch-bar" aria-hidden="true">
        {POINT_STATES.map((s) =>
          counts[s] > 0 ? <span key={s} className={`batch-bar-part part-${s}`} style={{ flexGrow: counts[s] }} title={`${s}: ${counts[s]}`} /> : null,
        )}
      </div>
      <dl className="totals batch-counts" aria-label="Points by state">
        {POINT_STATES.filter((s) => s !== "skipped" || counts.skipped > 0).map((s) => (
          <div key={s} className={`count-${s}`}>
            <dt>
              <span className={`count-swatch part-${s}`} aria-hidden="true" />
              {s}
            </dt>
            <dd>{counts[s]}</dd>
          </div>
        ))}
      </dl>
    </section>
  );
}

function Rounds({ batch }: { batch: Batch }) {
  return (
    <section aria-labelledby="rounds-heading">
      <h2 id="rounds-heading">Rounds</h2>
      <ol className="rounds" reversed>
        {batch.rounds.map((r) => (
          <li key={r.run_id}>
            <strong>Round {r.round}</strong> {r.round === 1 ? "(every point)" : "(retry of the failed points)"} ·{" "}
            <StateText state={r.state} /> · {r.started} of {r.size} {r.size === 1 ? "point" : "points"} started ·{" "}
            <span className="muted">
              created {formatInstant(r.created_at)}
              {r.ended_at && `, ended ${formatInstant(r.ended_at)}`}
            </span>{" "}
            <Link to={runPath(batch.batch_id, r.run_id)}>
              Round run<span className="visually-hidden"> {r.round}</span>
            </Link>
          </li>
        ))}
      </ol>
    </section>
  );
}

function PointState({ point }: { point: BatchPoint }) {
  const run = point.run_state;
  return (
    <>
      <span className={`state point-${point.state}`}>{point.state}</span>
      {run && run.toLowerCase() !== point.state && (
        <div className="muted small">
          run <StateText state={run} />
        </div>
      )}
    </>
  );
}

function Points({ batch }: { batch: Batch }) {
  const [filter, setFilter] = useState<PointState | "">("");
  const [limit, setLimit] = useState(SHOWN);
  const { varying, shared } = splitColumns(batch.runs, pointColumns(batch.runs));
  const chosen = filter ? batch.runs.filter((p) => p.state === filter) : batch.runs;
  const shown = chosen.slice(0, limit);
  return (
    <section aria-labelledby="points-heading">
      <h2 id="points-heading">Points</h2>
      {shared.length > 0 && (
        <p className="muted">
          Every point has{" "}
          {shared.map((c, i) => (
            <Fragment key={c}>
              {i > 0 && ", "}
              <code>{c}</code> = {valueText(batch.runs[0]?.parameters[c])}
            </Fragment>
          ))}
          .
        </p>
      )}
      <div className="filters">
        <div className="field">
          <label htmlFor="point-filter">Show points</label>
          <select id="point-filter" value={filter} onChange={(e) => setFilter(e.target.value as PointState | "")}>
            <option value="">All ({batch.runs.length})</option>
            {POINT_STATES.map((s) => (
              <option key={s} value={s}>
                {s} ({batch.counts[s]})
              </option>
            ))}
          </select>
        </div>
      </div>
      {chosen.length === 0 ? (
        <p className="muted">No point is {filter}.</p>
      ) : (
        <TableWrap label="Points, scrolls sideways">
          <table aria-label="Points" className="points">
            <thead>
              <tr>
                <th scope="col">Point</th>
                {varying.map((c) => (
                  <th key={c} scope="col">
                    <code>{c}</code>
                  </th>
                ))}
                <th scope="col">State</th>
                <th scope="col">Round</th>
                <th scope="col">Attempt</th>
                <th scope="col">Run</th>
                <th scope="col">Databricks</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((p) => (
                <tr key={p.point}>
                  <th scope="row">#{p.point}</th>
                  {varying.map((c) => (
                    <td key={c}>{valueText(p.parameters[c])}</td>
                  ))}
                  <td>
                    <PointState point={p} />
                  </td>
                  <td>{p.round}</td>
                  <td>{p.attempt ?? <span className="muted">—</span>}</td>
                  <td>
                    {p.run_id ? (
                      <Link to={runPath(batch.batch_id, p.run_id)}>
                        Run<span className="visually-hidden"> of point {p.point}</span>
                      </Link>
                    ) : (
                      <span className="muted">not started</span>
                    )}
                  </td>
                  <td>
                    {p.run_page_url && p.databricks_run_id != null ? (
                      <a href={p.run_page_url} target="_blank" rel="noreferrer">
                        {p.databricks_run_id}
                        <span className="visually-hidden"> (Databricks run of point {p.point})</span>
                      </a>
                    ) : (
                      <span className="muted">—</span>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
      {chosen.length > shown.length && (
        <p>
          Showing {shown.length} of {chosen.length}.{" "}
          <button type="button" onClick={() => setLimit((n) => n + SHOWN)}>
            Show {Math.min(SHOWN, chosen.length - shown.length)} more
          </button>
        </p>
      )}
    </section>
  );
}

/** A batch (`/batches/{id}`): its state, progress, rounds and points, followed live until it ends; cancel, retry failed. */
export function BatchPage() {
  const { batchId = "" } = useParams();
  const announce = useAnnounce();
  const client = useQueryClient();
  const [confirming, setConfirming] = useState(false);
  const path = { params: { path: { batch_id: batchId } } };
  const batch = useQuery({
    queryKey: ["batch", batchId],
    queryFn: () => call(api.GET("/api/batches/{batch_id}", path)),
    refetchInterval: (query) => {
      const data = query.state.data;
      return data && isTerminal(data.state) ? false : LIVE_MS;
    },
  });
  const settle = (data: Batch) => {
    client.setQueryData(["batch", batchId], data);
    void client.invalidateQueries({ predicate: (q) => q.queryKey[0] !== "batch" && q.queryKey[0] !== "me" });
  };
  const cancel = useMutation({
    mutationFn: () => call(api.POST("/api/batches/{batch_id}/cancel", path)),
    onSuccess: (data) => {
      setConfirming(false);
      announce(`Cancelled batch ${data.name}: ${data.state}`);
      settle(data);
    },
  });
  const retry = useMutation({
    mutationFn: () => call(api.POST("/api/batches/{batch_id}/retry-failed", path)),
    onSuccess: (data) => {
      const round = data.rounds[0];
      const size = round?.size ?? 0;
      announce(`Retrying the failed points of ${data.name}: round ${round?.round ?? "?"}, ${size} ${size === 1 ? "point" : "points"}`);
      settle(data);
    },
  });

  if (batch.isPending) return <p>Loading…</p>;
  if (batch.isError)
    return (
      <>
        <h1>Batch</h1>
        <ErrorAlert error={batch.error} onRetry={() => void batch.refetch()} />
        <p>
          <Link to="/batches">All batches</Link>
        </p>
      </>
    );
  const b = batch.data;
  const ended = isTerminal(b.state);
  const stopping = b.state === "CANCELLING";
  return (
    <>
      <p className="muted">
        <Link to="/batches">Batches</Link> / {b.name}
      </p>
      <h1>{b.name}</h1>
      <dl className="facts" aria-label="Batch">
        <dt>State</dt>
        <dd>
          <StateText state={b.state} />
          {!ended && <span className="muted small"> · updates every few seconds</span>}
        </dd>
        <dt>Template</dt>
        <dd>
          {b.template ? (
            <Link to={templatePath(b.template.name, b.template.version)}>
              {b.template.name} v{b.template.version}
            </Link>
          ) : (
            <span className="muted">none (a task given directly)</span>
          )}
        </dd>
        <dt>Runs</dt>
        <dd>{b.execution_mode === "sequential" ? "sequential: one point at a time" : `parallel: at most ${b.max_parallel} points at a time`}</dd>
        <dt>Size</dt>
        <dd>
          {b.size} {b.size === 1 ? "point" : "points"}
        </dd>
        <dt>Pool</dt>
        <dd>
          {b.pool}, {b.priority} priority
        </dd>
        <dt>Created</dt>
        <dd>
          {formatInstant(b.created_at)} by {b.created_by.name}
        </dd>
        <dt>Job</dt>
        <dd>
          <Link to={`/jobs/${encodeURIComponent(b.batch_id)}`}>
            <code>{b.batch_id}</code>
          </Link>
        </dd>
      </dl>
      <div className="job-actions">
        {!ended && (
          <button type="button" className="danger" onClick={() => setConfirming(true)} disabled={stopping}>
            Cancel batch
          </button>
        )}
        <button type="button" onClick={() => retry.mutate()} disabled={!canRetryFailed(b, ended) || retry.isPending} aria-describedby="retry-hint">
          Retry failed
        </button>
        <span id="retry-hint" className="hint">
          {canRetryFailed(b, ended)
            ? `Runs the ${b.counts.failed} failed ${b.counts.failed === 1 ? "point" : "points"} again, as a new round.`
            : ended
              ? "No point failed."
              : "Once the batch has ended, its failed points can be run again."}
        </span>
      </div>
      {retry.isError && <ErrorAlert error={retry.error} />}
      <Dialog open={confirming} title={`Cancel batch ${b.name}?`} onClose={() => setConfirming(false)} alert>
        <p>
          Points not started yet never start; running ones are cancelled in Databricks too. Points that ended keep their
          results. This cannot be undone, but failed points can be retried afterwards.
        </p>
        <ErrorAlert error={cancel.error} />
        <div className="actions">
          <button type="button" onClick={() => setConfirming(false)} autoFocus>
            Keep batch
          </button>
          <button type="button" className="danger" onClick={() => cancel.mutate()} disabled={cancel.isPending}>
            Cancel batch
          </button>
        </div>
      </Dialog>
      <Progress counts={b.counts} size={b.size} />
      <Rounds batch={b} />
      <Points batch={b} />
    </>
  );
}
