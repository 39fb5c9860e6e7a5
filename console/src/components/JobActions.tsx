import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";

import { ApiError, api, call, messageOf } from "../api/client";
import type { Job, JobSummary } from "../api/types";
import { bodyOf, formFromJob, type FormState } from "../lib/form";
import { Dialog } from "./Dialog";
import { ErrorAlert } from "./ErrorAlert";
import { JobForm } from "./JobForm";
import { canReplay, hasEventTriggers, ReplaySkipped, type ReplayTarget } from "./ReplaySkipped";
import { useAnnounce } from "./Status";

type Target = Pick<JobSummary, "job_id" | "name" | "status">;

/** Refresh everything that shows jobs or runs after a change. */
export function useRefresh() {
  const client = useQueryClient();
  return () => client.invalidateQueries();
}

/**
 * Pause or resume, run now, edit, cancel: the buttons a job has, wherever it is shown; and, for a
 * job with event triggers (the whole job given), "Replay skipped events…" once it is resumed.
 */
export function JobActions({ job }: { job: ReplayTarget }) {
  const announce = useAnnounce();
  const refresh = useRefresh();
  const [editing, setEditing] = useState(false);
  const [cancelling, setCancelling] = useState(false);
  const [replaying, setReplaying] = useState(false);
  // after a resume here: skipped events are not run unless asked (a note with the way to ask)
  const [resumedHere, setResumedHere] = useState(false);
  const recordsSkipped = hasEventTriggers(job) && job.record_skipped_while_paused === true;
  const path = { params: { path: { job_id: job.job_id } } };
  const act = useMutation({
    mutationFn: async (what: "pause" | "resume" | "run") => {
      if (what === "pause") await call(api.POST("/api/jobs/{job_id}/pause", path));
      if (what === "resume") await call(api.POST("/api/jobs/{job_id}/resume", path));
      if (what === "run") await call(api.POST("/api/jobs/{job_id}/run", path));
      return what;
    },
    onSuccess: (what) => {
      if (what !== "run") setResumedHere(what === "resume" && recordsSkipped);
      announce(
        what === "pause"
          ? `Paused ${job.name}`
          : what === "resume"
            ? `Resumed ${job.name}${recordsSkipped ? ". Files and webhook calls skipped while it was paused are not run unless you replay them." : ""}`
            : `Started a run of ${job.name}`,
      );
      void refresh();
    },
    onError: (err) => announce(messageOf(err)),
  });
  const ended = job.status === "CANCELLED" || job.status === "COMPLETED";
  return (
    <div className="job-actions">
      {job.status === "ACTIVE" && (
        <button type="button" onClick={() => act.mutate("pause")} disabled={act.isPending}>
          Pause
        </button>
      )}
      {job.status === "PAUSED" && (
        <button type="button" onClick={() => act.mutate("resume")} disabled={act.isPending}>
          Resume
        </button>
      )}
      {canReplay(job) && (
        <button type="button" onClick={() => setReplaying(true)}>
          Replay skipped events…
        </button>
      )}
      {job.status !== "CANCELLED" && (
        <button type="button" onClick={() => act.mutate("run")} disabled={act.isPending}>
          Run now
        </button>
      )}
      {!ended && (
        <button type="button" onClick={() => setEditing(true)}>
          Edit
        </button>
      )}
      {job.status !== "CANCELLED" && (
        <button type="button" className="danger" onClick={() => setCancelling(true)}>
          Cancel job
        </button>
      )}
      {act.isError && <ErrorAlert error={act.error} />}
      {resumedHere && job.status === "ACTIVE" && (
        <p className="note">
          Resumed. Files and webhook calls recorded as skipped while it was paused are not run unless you ask:{" "}
          <button type="button" className="link-button" onClick={() => setReplaying(true)}>
            Replay them…
          </button>
        </p>
      )}
      <Dialog open={replaying} title={`Replay skipped events of ${job.name}`} onClose={() => setReplaying(false)}>
        {replaying && <ReplaySkipped job={job} onClose={() => setReplaying(false)} onReplayed={() => setResumedHere(false)} />}
      </Dialog>
      <Dialog open={editing} title={`Edit ${job.name}`} onClose={() => setEditing(false)}>
        {editing && <EditJob jobId={job.job_id} onDone={() => setEditing(false)} />}
      </Dialog>
      <CancelDialog jobs={cancelling ? [job] : []} onClose={() => setCancelling(false)} />
    </div>
  );
}

function EditJob({ jobId, onDone }: { jobId: string; onDone: () => void }) {
  const announce = useAnnounce();
  const refresh = useRefresh();
  const [conflict, setConflict] = useState(false);
  const [generation, setGeneration] = useState(0); // a reload starts the form afresh
  const job = useQuery({
    queryKey: ["job-for-edit", jobId, generation],
    queryFn: () => call(api.GET("/api/jobs/{job_id}", { params: { path: { job_id: jobId } } })),
    staleTime: Infinity, // the version the user started from, until they reload
    gcTime: 0, // opening the dialog again reads the job again
  });
  if (job.isPending) return <p>Loading…</p>;
  if (job.isError) return <ErrorAlert error={job.error} onRetry={() => void job.refetch()} />;
  const read: Job = job.data;

  async function save(form: FormState) {
    try {
      await call(
        api.PUT("/api/jobs/{job_id}", {
          params: { path: { job_id: jobId }, header: { "If-Match": `"v${read.version}"` } },
          body: bodyOf(form, read) as never,
        }),
      );
    } catch (err) {
      if (err instanceof ApiError && err.status === 412) {
        setConflict(true);
        return;
      }
      throw err;
    }
    announce(`Saved ${form.name}`);
    void refresh();
    onDone();
  }

  return (
    <>
      {conflict && (
        <div role="alert" className="alert">
          <p>
            This job was changed by someone else since you opened it, so your changes were not saved. Reload to see
            their version, then make your change again.
          </p>
          <button
            type="button"
            onClick={() => {
              setConflict(false);
              setGeneration((g) => g + 1);
            }}
          >
            Reload
          </button>
        </div>
      )}
      <JobForm key={`${read.version}-${generation}`} initial={formFromJob(read)} submitLabel="Save changes" onSubmit={save} />
      <div className="actions">
        <button type="button" onClick={onDone}>
          Close
        </button>
      </div>
    </>
  );
}

/** Confirms a cancel of one job or several, and says what it does. */
export function CancelDialog({ jobs, onClose, onDone }: { jobs: Target[]; onClose: () => void; onDone?: () => void }) {
  const announce = useAnnounce();
  const refresh = useRefresh();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const one = jobs.length === 1 ? jobs[0] : undefined;
  const title = one ? `Cancel ${one.name}?` : `Cancel ${jobs.length} jobs?`;

  async function confirm() {
    setBusy(true);
    setError(null);
    const results = await Promise.allSettled(
      jobs.map((j) => call(api.DELETE("/api/jobs/{job_id}", { params: { path: { job_id: j.job_id } } }))),
    );
    setBusy(false);
    const failed = results.filter((r) => r.status === "rejected") as PromiseRejectedResult[];
    void refresh();
    if (failed.length > 0) {
      setError(failed[0]?.reason);
      return;
    }
    announce(one ? `Cancelled ${one.name}` : `Cancelled ${jobs.length} jobs`);
    onClose();
    onDone?.();
  }

  return (
    <Dialog open={jobs.length > 0} title={title} onClose={onClose} alert>
      <p>
        No further runs will start. An active run is cancelled in Databricks. The {one ? "job stays" : "jobs stay"} in
        the list as CANCELLED, with {one ? "its" : "their"} history; this cannot be undone.
      </p>
      <ErrorAlert error={error} />
      <div className="actions">
        <button type="button" onClick={onClose} autoFocus>
          Keep {one ? "job" : "jobs"}
        </button>
        <button type="button" className="danger" onClick={() => void confirm()} disabled={busy}>
          Cancel {one ? "job" : "jobs"}
        </button>
      </div>
    </Dialog>
  );
}
