import { Link } from "react-router-dom";

import type { Run } from "../api/types";
import { runOrigin } from "../lib/triggers";
import { formatInstant } from "../lib/time";
import { JobLink, runPath, useJobName } from "./JobLink";

function JobName({ id }: { id: string }) {
  return <>{useJobName(id) ?? id}</>;
}

/** Why a run started, in a word or two: "Schedule", "Run now", "After prepare", "3 files", "Webhook order-42". */
export function RunOrigin({ run }: { run: Pick<Run, "trigger" | "cause"> }) {
  const upstream = Object.keys(run.cause?.runs ?? {});
  if (run.trigger === "after" && upstream.length > 0)
    return (
      <>
        After{" "}
        {upstream.map((id, k) => (
          <span key={id}>
            {k > 0 && ", "}
            <JobName id={id} />
          </span>
        ))}
      </>
    );
  return <>{runOrigin(run)}</>;
}

const SENTENCE: Record<string, string> = {
  schedule: "Its schedule started it.",
  manual: "Someone asked for it (Run now).",
  retry: "A retry of a run that failed.",
  backfill: "A backfill of a past scheduled time.",
};

/**
 * What started a run, in full: the upstream runs (linked) of an `after` run, the files of a file
 * arrival run (URL, event id, time), the Idempotency-Key and parameters of a webhook call.
 */
export function RunCause({ run }: { run: Pick<Run, "trigger" | "cause" | "run_id"> }) {
  const cause = run.cause;
  if (!cause) return <p>{SENTENCE[run.trigger] ?? <RunOrigin run={run} />}</p>;
  const runs = Object.entries(cause.runs ?? {});
  const files = cause.files ?? [];
  const payload = Object.entries(cause.payload ?? {});
  return (
    <div className="cause">
      {cause.kind === "after" && (
        <>
          <p>Started when these runs had ended:</p>
          <ul aria-label="Upstream runs">
            {runs.map(([jobId, runId]) => (
              <li key={jobId}>
                <JobLink id={jobId} />: <Link to={runPath(jobId, runId)}>run {runId.slice(jobId.length + 1) || runId}</Link>
              </li>
            ))}
          </ul>
        </>
      )}
      {cause.kind === "file_arrival" && (
        <>
          <p>
            Started by {files.length} {files.length === 1 ? "file" : "files"} created in blob storage (oldest first):
          </p>
          <div className="table-wrap">
            <table aria-label="Files" className="files">
              <thead>
                <tr>
                  <th scope="col">File</th>
                  <th scope="col">Event id</th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                {files.map((f) => (
                  <tr key={`${f.event_id}-${f.url}`}>
                    <td className="url">
                      <code>{f.url}</code>
                    </td>
                    <td className="url">
                      <code>{f.event_id}</code>
                    </td>
                    <td className="nowrap">{formatInstant(f.at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
      {cause.kind === "webhook" && (
        <>
          <p>Started by a webhook call:</p>
          <dl className="facts">
            <dt>Idempotency key</dt>
            <dd>
              <code>{cause.idempotency_key ?? "—"}</code>
            </dd>
          </dl>
          {payload.length === 0 ? (
            <p className="muted">No parameters.</p>
          ) : (
            <div className="table-wrap">
              <table aria-label="Payload" className="payload">
                <thead>
                  <tr>
                    <th scope="col">Parameter</th>
                    <th scope="col">Value</th>
                  </tr>
                </thead>
                <tbody>
                  {payload.map(([key, value]) => (
                    <tr key={key}>
                      <th scope="row" className="url">
                        <code>{key}</code>
                      </th>
                      <td className="url">
                        <code>{value}</code>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
    </div>
  );
}
