import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { type ReactNode, useEffect, useId, useState } from "react";

import { ApiError, api, call } from "../api/client";
import { isTerminal, type Run, type Step } from "../api/types";
import { layout, neverRan, notRunReason, runIfTag, SIZES, stepDuration, stepsSummary } from "../lib/pipeline";
import { formatInstant } from "../lib/time";
import { Dialog } from "./Dialog";
import { ErrorAlert } from "./ErrorAlert";
import { useRefresh } from "./JobActions";
import { useAnnounce } from "./Status";
import { StateText } from "./StateText";
import { TableWrap } from "./TableWrap";

const RUN_MS = 2000; // a pipeline run under way, read again this often
const STEP_MS = 3000; // a running step's own run (its Databricks link, its attempts)

/** The time now, moving every second while `ticking` (a running step's "running for …"). */
function useNow(ticking: boolean): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!ticking) return;
    setNow(Date.now());
    const timer = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(timer);
  }, [ticking]);
  return now;
}

/** "Pipeline steps: 3 succeeded, 1 failed, 1 upstream failed": the graph's accessible name. */
export const graphLabel = (steps: readonly Step[]) => `Pipeline steps: ${stepsSummary(steps)}`;

const clip = (text: string, max: number) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

/**
 * The steps as boxes in columns by depth with an arrow from each dependency: coloured by state,
 * the state also written in the box. An image with a summary for its name; the table "Steps"
 * beside it says everything the picture does.
 */
export function PipelineGraph({ steps, now }: { steps: readonly Step[]; now: number }) {
  const marker = `arrow-${useId().replace(/[^a-zA-Z0-9_-]/g, "")}`;
  const drawn = layout(steps);
  const byKey = new Map(steps.map((s) => [s.key, s]));
  const { boxWidth: w, boxHeight: h } = SIZES;
  return (
    <svg
      role="img"
      aria-label={graphLabel(steps)}
      className="pipeline-svg"
      width={drawn.width}
      height={drawn.height}
      viewBox={`0 0 ${drawn.width} ${drawn.height}`}
    >
      <defs>
        <marker id={marker} viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">
          <path d="M0,0 L10,5 L0,10 z" className="pipeline-arrowhead" />
        </marker>
      </defs>
      {drawn.arrows.map((arrow) => (
        <path key={`${arrow.from}>${arrow.to}`} d={arrow.path} className="pipeline-arrow" markerEnd={`url(#${marker})`} />
      ))}
      {drawn.boxes.map((box) => {
        const step = byKey.get(box.key);
        if (!step) return null;
        const tag = runIfTag(step.run_if);
        const time = stepDuration(step, now) || (step.state === "PENDING" ? "waiting" : "");
        const tagWidth = tag.length * 6 + 12;
        return (
          <g
            key={box.key}
            transform={`translate(${box.x},${box.y})`}
            className={`step-box step-${step.state}${neverRan(step) ? " step-not-run" : ""}`}
          >
            <title>{`${step.key}: ${step.state}${time ? `, ${time}` : ""}${tag ? `, runs if ${step.run_if}` : ""}`}</title>
            <rect width={w} height={h} rx="6" />
            <text x="10" y="19" className="step-key">
              {clip(step.key, 20)}
            </text>
            <text x="10" y="35" className="step-state">
              {step.state}
            </text>
            <text x="10" y="50" className="step-time">
              {clip(time, 26)}
            </text>
            {tag && (
              <g transform={`translate(${w - tagWidth - 6},-8)`} className="step-tag">
                <rect width={tagWidth} height="15" rx="7" />
                <text x={tagWidth / 2} y="11" textAnchor="middle">
                  {tag}
                </text>
              </g>
            )}
          </g>
        );
      })}
    </svg>
  );
}

/** A yes/no confirmation that cancels one run (a pipeline run or one step's run). */
function ConfirmCancel({
  open,
  runId,
  title,
  keep,
  confirm,
  done,
  onClose,
  children,
}: {
  open: boolean;
  runId: string;
  title: string;
  keep: string;
  confirm: string;
  done: string;
  onClose: () => void;
  children: ReactNode;
}) {
  const announce = useAnnounce();
  const refresh = useRefresh();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const close = () => {
    setError(null);
    onClose();
  };

  async function cancel() {
    setBusy(true);
    setError(null);
    try {
      // Only the lists are read again: this answer's own view of the steps is not used.
      await call(api.POST("/api/runs/{run_id}/cancel", { params: { path: { run_id: runId } } }));
      announce(done);
      close();
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) {
        const state = err.errors.state;
        setError(new ApiError(409, `It had already ended${state ? ` (${state})` : ""}: there is nothing to cancel.`));
      } else setError(err);
    } finally {
      setBusy(false);
      void refresh();
    }
  }

  return (
    <Dialog open={open} title={title} onClose={close} alert>
      {children}
      <ErrorAlert error={error} />
      <div className="actions">
        <button type="button" onClick={close} autoFocus>
          {keep}
        </button>
        <button type="button" className="danger" onClick={() => void cancel()} disabled={busy}>
          {confirm}
        </button>
      </div>
    </Dialog>
  );
}

/** "Cancel run" of a pipeline run under way, with its confirmation. */
export function CancelPipelineRun({ run, jobName }: { run: Pick<Run, "run_id" | "scheduled_for">; jobName: string }) {
  const [open, setOpen] = useState(false);
  return (
    <>
      <button type="button" className="danger" onClick={() => setOpen(true)}>
        Cancel run
      </button>
      <ConfirmCancel
        open={open}
        runId={run.run_id}
        title={`Cancel this run of ${jobName}?`}
        keep="Keep run"
        confirm="Cancel run"
        done={`Cancelled the run of ${jobName} scheduled for ${formatInstant(run.scheduled_for)}`}
        onClose={() => setOpen(false)}
      >
        <p>
          Its running steps are cancelled, in Databricks too, and the steps that have not started never will. The job
          stays scheduled: its next runs are not affected.
        </p>
      </ConfirmCancel>
    </>
  );
}

/** "Cancel step {key}" of a running step, with its confirmation. */
function CancelStep({ step }: { step: Step }) {
  const [open, setOpen] = useState(false);
  if (!step.run_id) return null;
  return (
    <>
      <button type="button" className="danger" onClick={() => setOpen(true)}>
        Cancel step<span className="visually-hidden"> {step.key}</span>
      </button>
      <ConfirmCancel
        open={open}
        runId={step.run_id}
        title={`Cancel step ${step.key}?`}
        keep="Keep step"
        confirm="Cancel step"
        done={`Cancelled step ${step.key}`}
        onClose={() => setOpen(false)}
      >
        <p>
          The step&apos;s run is cancelled, in Databricks too, and counts as failed. The pipeline goes on: the steps
          that depend on it run only if their run if allows it.
        </p>
      </ConfirmCancel>
    </>
  );
}

function StepRow({ step, known, now, actions, cancellable }: { step: Step; known: Set<string>; now: number; actions: boolean; cancellable: boolean }) {
  // The step's own run says its attempts and Databricks link: read once it started, again while it runs.
  const own = useQuery({
    queryKey: ["step-run", step.run_id, step.state],
    queryFn: () => call(api.GET("/api/runs/{run_id}", { params: { path: { run_id: step.run_id ?? "" } } })),
    enabled: step.run_id != null,
    staleTime: step.state === "ACTIVE" ? 0 : Infinity,
    refetchInterval: step.state === "ACTIVE" ? STEP_MS : false,
    placeholderData: keepPreviousData,
  });
  const attempts = own.data?.attempts ?? [];
  const current = attempts[attempts.length - 1];
  const why = notRunReason(step);
  return (
    <tr className={neverRan(step) ? "not-run" : undefined}>
      <th scope="row" className="name">
        {step.key}
      </th>
      <td>
        <StateText state={step.state} />
        {why && <div className="muted small">{why}</div>}
      </td>
      <td>{Math.max(step.attempts, attempts.length)}</td>
      <td className="deps">
        {step.depends_on.length === 0
          ? "—"
          : step.depends_on.map((dep, i) => (
              <span key={dep}>
                {i > 0 && ", "}
                {dep}
                {!known.has(dep) && <span className="muted"> (not in this run)</span>}
              </span>
            ))}
      </td>
      <td>
        <code className={step.run_if === "ALL_SUCCESS" ? "muted" : undefined}>{step.run_if}</code>
      </td>
      <td className="small started">{formatInstant(step.started_at)}</td>
      <td className="nowrap">{stepDuration(step, now) || "—"}</td>
      <td>
        {current?.run_page_url && current.databricks_run_id != null ? (
          <a href={current.run_page_url} target="_blank" rel="noreferrer">
            Databricks run {current.databricks_run_id}
          </a>
        ) : own.isError ? (
          <span className="muted small">could not be read</span>
        ) : (
          <span className="muted">—</span>
        )}
      </td>
      {actions && <td>{cancellable && step.state === "ACTIVE" && <CancelStep step={step} />}</td>}
    </tr>
  );
}

/**
 * The table "Steps": every step with its state, attempts, dependencies, run if, start, duration
 * and Databricks run; "Cancel step" on a running step while the pipeline run goes on. No retry:
 * a pipeline run or a step is not retried (repair comes later).
 */
export function StepsTable({ steps, now, cancellable }: { steps: readonly Step[]; now: number; cancellable: boolean }) {
  const known = new Set(steps.map((s) => s.key));
  const actions = cancellable && steps.some((s) => s.state === "ACTIVE" && s.run_id);
  return (
    <TableWrap label="Steps">
      <table aria-label="Steps" className="steps">
        <thead>
          <tr>
            <th scope="col">Step</th>
            <th scope="col">State</th>
            <th scope="col">Attempts</th>
            <th scope="col">Depends on</th>
            <th scope="col">Run if</th>
            <th scope="col">Started</th>
            <th scope="col">Duration</th>
            <th scope="col">Databricks run</th>
            {actions && <th scope="col">Action</th>}
          </tr>
        </thead>
        <tbody>
          {steps.map((step) => (
            <StepRow key={step.key} step={step} known={known} now={now} actions={actions} cancellable={cancellable} />
          ))}
        </tbody>
      </table>
    </TableWrap>
  );
}

const REPAIRABLE = new Set(["FAILED", "SUCCEEDED_WITH_FAILURES", "CANCELLED"]);

/** "Repair failed steps": runs the failed steps and what follows them again, in the same run. */
export function RepairPipelineRun({ run }: { run: Pick<Run, "run_id" | "state"> }) {
  const announce = useAnnounce();
  const refresh = useRefresh();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  if (!REPAIRABLE.has(run.state)) return null;

  async function repair() {
    setBusy(true);
    setError(null);
    try {
      const repaired = await call(
        api.POST("/api/runs/{run_id}/repair", { params: { path: { run_id: run.run_id } }, body: { all_failed: true } }),
      );
      const last = repaired.repair_history?.at(-1);
      announce(`Repair ${last?.number ?? ""} started: ${(last?.steps ?? []).join(", ")} run again`);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
      void refresh();
    }
  }

  return (
    <div className="actions">
      <button type="button" onClick={() => void repair()} disabled={busy}>
        Repair failed steps
      </button>
      <ErrorAlert error={error} />
    </div>
  );
}

/** The repairs made to a pipeline run, oldest first. */
function Repairs({ run }: { run: Run }) {
  const history = run.repair_history ?? [];
  if (history.length === 0) return null;
  return (
    <ul className="repairs" aria-label="Repairs">
      {history.map((r) => (
        <li key={r.number}>
          Repair {r.number} by {r.by}, {formatInstant(r.at)}: {r.steps.join(", ")}
        </li>
      ))}
    </ul>
  );
}

/**
 * A pipeline run's steps: the graph and the table. Read again every 2 s while the run is under
 * way (the list it came from may not be polled), whichever of the two answers is newer shown.
 */
export function PipelineRun({ run }: { run: Run }) {
  const live = useQuery({
    queryKey: ["run", run.run_id],
    queryFn: () => call(api.GET("/api/runs/{run_id}", { params: { path: { run_id: run.run_id } } })),
    enabled: !isTerminal(run.state),
    refetchInterval: (query) => (query.state.data && isTerminal(query.state.data.state) ? false : RUN_MS),
  });
  const shown = live.data && Date.parse(live.data.updated_at) >= Date.parse(run.updated_at) ? live.data : run;
  const steps = shown.steps ?? [];
  const now = useNow(steps.some((s) => s.state === "ACTIVE"));
  if (steps.length === 0) return <p className="muted">The steps start when the run launches.</p>;
  return (
    <div className="pipeline">
      <div className="pipeline-graph" role="group" aria-label="Graph of the steps" tabIndex={0}>
        <PipelineGraph steps={steps} now={now} />
      </div>
      {live.isError && <ErrorAlert error={live.error} />}
      <StepsTable steps={steps} now={now} cancellable={!isTerminal(shown.state) && shown.state !== "CANCELLING"} />
      <Repairs run={shown} />
      <RepairPipelineRun run={shown} />
    </div>
  );
}
