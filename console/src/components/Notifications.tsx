import { useState } from "react";

import { ApiError, api, call, messageOf } from "../api/client";
import type { Job, Notice, NotificationTest } from "../api/types";
import {
  kindAndHost,
  notificationLines,
  NOTICE_STATES,
  noticeEventInWords,
  noticeStateHelp,
  noticesSummary,
  rulesInWords,
  testResultInWords,
  testSummary,
  tryInWords,
} from "../lib/notifications";
import { formatInstant, formatPrecise } from "../lib/time";

type Target = Pick<Job, "job_id" | "name" | "notifications">;

/**
 * A job's "Notifications": who is told about what, in words ("Failure → Slack (hooks.slack.com)"),
 * hosts only (a Teams or Slack URL holds a token); and "Send test notification", whose results
 * (delivered, or the error and the HTTP status) its live region says.
 */
export function JobNotifications({ job }: { job: Target }) {
  const lines = notificationLines(job.notifications);
  const rules = rulesInWords(job.notifications);
  return (
    <section aria-labelledby="notifications-heading">
      <h2 id="notifications-heading">Notifications</h2>
      {lines.length === 0 ? (
        <p>None: nobody is told about its runs. Edit the job to tell a webhook, a Teams channel or Slack.</p>
      ) : (
        <>
          <ul className="notifications">
            {lines.map((line) => (
              <li key={line.event}>
                <strong>{line.event}</strong> → {line.to}
              </li>
            ))}
          </ul>
          {rules && <p className="muted small">{rules}</p>}
          <TestNotifications job={job} />
        </>
      )}
    </section>
  );
}

/** "Send test notification": POST /api/jobs/{id}/notifications/test, and how it went for each destination. */
export function TestNotifications({ job }: { job: Pick<Job, "job_id" | "name"> }) {
  const [busy, setBusy] = useState(false);
  const [refused, setRefused] = useState<unknown>(null);
  const [results, setResults] = useState<NotificationTest[] | null>(null);

  async function send() {
    if (busy) return;
    setBusy(true);
    setRefused(null);
    setResults(null);
    try {
      const answer = await call(api.POST("/api/jobs/{job_id}/notifications/test", { params: { path: { job_id: job.job_id } } }));
      setResults(answer.items); // announced by the role=status below
    } catch (err) {
      setRefused(err);
    } finally {
      setBusy(false);
    }
  }

  const status = refused instanceof ApiError && refused.status > 0 ? ` (HTTP ${refused.status})` : "";
  return (
    <div className="notification-test">
      <p className="muted small">
        A test sends each destination a sample (a failure of a run that never was, marked as a test) once, now. Nothing
        is recorded on any run.
      </p>
      <button type="button" onClick={() => void send()} aria-disabled={busy}>
        Send test notification
      </button>
      {refused != null && (
        <div role="alert" className="alert">
          <p>
            <strong>Refused{status}:</strong> {messageOf(refused)}
          </p>
        </div>
      )}
      {/* always there, so that what it comes to say is announced */}
      <div role="status" className={results ? (results.every((r) => r.delivered) ? "confirmation" : "note") : undefined}>
        {busy && <p>Sending a test to each destination…</p>}
        {results && (
          <>
            <p>
              <strong>{testSummary(results)}</strong>
            </p>
            <ul aria-label="Test results" className="test-results">
              {results.map((r, i) => (
                <li key={i}>
                  {kindAndHost(r.kind, r.host)}:{" "}
                  <span className={r.delivered ? "outcome-ok" : "outcome-bad"}>{testResultInWords(r)}</span>
                </li>
              ))}
            </ul>
          </>
        )}
      </div>
    </div>
  );
}

/** A run's notifications: each notice's event, destination (kind and host), state, when due and its tries. */
export function RunNotices({ notices }: { notices: readonly Notice[] }) {
  return (
    <>
      <p>{noticesSummary(notices)}</p>
      <div className="table-wrap">
        <table aria-labelledby="notifications-heading" className="notices">
          <thead>
            <tr>
              <th scope="col">Event</th>
              <th scope="col">Destination</th>
              <th scope="col">State</th>
              <th scope="col">Due</th>
              <th scope="col">Tries</th>
            </tr>
          </thead>
          <tbody>
            {notices.map((n) => {
              const help = noticeStateHelp(n);
              return (
                <tr key={n.id}>
                  <th scope="row">{noticeEventInWords(n)}</th>
                  <td className="url">{kindAndHost(n.kind, n.host)}</td>
                  <td>
                    <span className={`state notice-${n.state}`}>{NOTICE_STATES[n.state]}</span>
                    {help && <div className="muted small">{help}</div>}
                  </td>
                  <td className="nowrap">{n.state === "not_needed" ? "—" : formatInstant(n.due_at)}</td>
                  <td>
                    {n.tries.length === 0 ? (
                      <span className="muted">none yet</span>
                    ) : (
                      <ol className="tries">
                        {n.tries.map((t, k) => (
                          <li key={k}>
                            <span className="nowrap">{formatPrecise(t.at)}</span>:{" "}
                            <span className={t.error == null ? "outcome-ok" : "outcome-bad"}>{tryInWords(t)}</span>, {t.ms} ms
                          </li>
                        ))}
                      </ol>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </>
  );
}
