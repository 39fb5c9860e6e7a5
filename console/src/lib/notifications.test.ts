import { describe, expect, it } from "vitest";

import type { Job, Notifications } from "../api/types";
import { bodyOf, checkForm, emptyForm, fieldErrors, formFromJob } from "./form";
import {
  checkNotifications,
  destinationKeys,
  emptyDestination,
  emptyNotifications,
  hideUrls,
  hostOf,
  lineInWords,
  noticeEventInWords,
  noticeStateHelp,
  noticesSummary,
  notificationError,
  notificationLines,
  notificationsDraftOf,
  notificationsOf,
  rulesInWords,
  testResultInWords,
  testSummary,
  tryInWords,
} from "./notifications";

const SLACK = "https://hooks.slack.com/services/T000/B000/XXXXSECRET";
const HOOK = "https://hooks.example.com/ml/runs?token=abc";

const NOTIFICATIONS: Notifications = {
  on_start: [],
  on_success: [{ kind: "webhook", url: HOOK, secret_ref: "ml-hook" }],
  on_failure: [
    { kind: "slack", url: SLACK },
    { kind: "webhook", url: HOOK, secret_ref: null },
  ],
  on_deadline_missed: [{ kind: "teams", url: "https://prod-12.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sig=s3" }],
  on_duration_warning: [{ kind: "slack", url: SLACK }],
  duration_warning_after: "PT2H",
  only_on_last_attempt: true,
  no_alert_for_skipped: true,
  no_alert_for_cancelled: false,
};

describe("notifications in words", () => {
  it("say who is told about what, by host, never the URL", () => {
    const lines = notificationLines(NOTIFICATIONS).map(lineInWords);
    expect(lines).toEqual([
      "Success → webhook (hooks.example.com)",
      "Failure → Slack (hooks.slack.com), webhook (hooks.example.com)",
      "Deadline missed → Teams (prod-12.westeurope.logic.azure.com)",
      "Duration warning (still running after 2 hours) → Slack (hooks.slack.com)",
    ]);
    expect(lines.join(" ")).not.toMatch(/SECRET|token|sig=|services/);
    expect(notificationLines(null)).toEqual([]);
    expect(notificationLines({ ...NOTIFICATIONS, on_success: [], on_failure: [], on_deadline_missed: [], on_duration_warning: [] })).toEqual([]);
  });
  it("name a host however the URL is written", () => {
    expect(hostOf("http://127.0.0.1:8123/hook")).toBe("127.0.0.1");
    expect(hostOf(" https://Hooks.Slack.com/x ")).toBe("hooks.slack.com");
    expect(hostOf("not a url")).toBe("unknown host");
  });
  it("cut the URLs of the audit trail's notifications to their hosts", () => {
    expect(hideUrls(NOTIFICATIONS.on_failure)).toEqual([
      { kind: "slack", url: "hooks.slack.com/…" },
      { kind: "webhook", url: "hooks.example.com/…", secret_ref: null },
    ]);
    expect(hideUrls({ on_success: [{ kind: "teams", url: "https://x.logic.azure.com/w?sig=1" }], only_on_last_attempt: true })).toEqual({
      on_success: [{ kind: "teams", url: "x.logic.azure.com/…" }],
      only_on_last_attempt: true,
    });
    expect(hideUrls(null)).toBeNull();
    expect(hideUrls("PT2H")).toBe("PT2H");
  });
  it("say what the failure destinations are told besides failures", () => {
    expect(rulesInWords(NOTIFICATIONS)).toBe(
      "A failure is told once no retry is left (a failed attempt that will be retried tells nobody). " +
        "Cancelled runs are told to the failure destinations too. Skipped runs tell nobody.",
    );
    expect(rulesInWords({ ...NOTIFICATIONS, only_on_last_attempt: false, no_alert_for_cancelled: true })).toBe(
      "Each failed attempt is told, even one that will be retried. Skipped and cancelled runs tell nobody.",
    );
    expect(rulesInWords({ ...NOTIFICATIONS, on_failure: [] })).toBe("");
  });
  it("say how a test went: delivered, or the error and the HTTP status", () => {
    const base = { event: "failure", kind: "slack" as const, host: "hooks.slack.com" };
    expect(testResultInWords({ ...base, delivered: true, status: 200, error: null, ms: 8 })).toBe("delivered, HTTP 200 in 8 ms");
    expect(testResultInWords({ ...base, delivered: false, status: 503, error: "HTTP 503 Service Unavailable", ms: 5 })).toBe(
      "failed, HTTP 503 Service Unavailable after 5 ms",
    );
    expect(testResultInWords({ ...base, delivered: false, status: 410, error: "gone", ms: 5 })).toBe("failed, gone (HTTP 410) after 5 ms");
    expect(testResultInWords({ ...base, delivered: false, status: null, error: "could not connect", ms: 3 })).toBe("failed, could not connect after 3 ms");
    expect(testResultInWords({ ...base, delivered: false, status: null, error: "signing secret 'ml' is not set", ms: 0 })).toBe(
      "failed, signing secret 'ml' is not set",
    );
    const ok = { ...base, delivered: true, status: 200, error: null, ms: 1 };
    expect(testSummary([ok, { ...ok, delivered: false }])).toBe("Sent a test to 2 destinations: 1 delivered, 1 failed.");
    expect(testSummary([ok])).toBe("Sent a test to 1 destination: 1 delivered.");
  });
  it("say what a run's notices are and how their tries went", () => {
    expect(noticeEventInWords({ event: "failure", attempt: 1 })).toBe("Failure");
    expect(noticeEventInWords({ event: "failure", attempt: 2 })).toBe("Failure of attempt 2");
    expect(noticeEventInWords({ event: "deadline_missed", attempt: 1 })).toBe("Deadline missed");
    const at = "2026-06-01T12:00:00Z";
    const failed = { at, status: 503, error: "HTTP 503 Service Unavailable", ms: 12 };
    expect(noticeStateHelp({ state: "pending", tries: [], event: "success" })).toBe("not sent yet");
    expect(noticeStateHelp({ state: "pending", tries: [failed], event: "success" })).toBe("tried 1 time, will try again");
    expect(noticeStateHelp({ state: "pending", tries: [], event: "duration_warning" })).toBe("sent only if the run is still running then");
    expect(noticeStateHelp({ state: "failed", tries: Array(5).fill(failed), event: "success" })).toBe("every try failed (5); no more tries");
    expect(noticeStateHelp({ state: "not_needed", tries: [], event: "duration_warning" })).toBe("the run ended in time");
    expect(tryInWords(failed)).toBe("HTTP 503 Service Unavailable");
    expect(tryInWords({ status: 200, error: null })).toBe("delivered, HTTP 200");
    expect(tryInWords({ status: null, error: "no answer within 10 s" })).toBe("no answer within 10 s");
    expect(noticesSummary([{ state: "delivered" }, { state: "pending" }, { state: "delivered" }])).toBe("3 notifications: 2 delivered, 1 pending.");
  });
});

describe("notifications in the form", () => {
  it("round-trip a job's notifications: the same lists, in order, with the choices", () => {
    const draft = notificationsDraftOf(NOTIFICATIONS);
    expect(draft.destinations.map((d) => [d.event, d.kind, d.secretRef])).toEqual([
      ["on_success", "webhook", "ml-hook"],
      ["on_failure", "slack", ""],
      ["on_failure", "webhook", ""],
      ["on_deadline_missed", "teams", ""],
      ["on_duration_warning", "slack", ""],
    ]);
    expect(draft.warnAfter).toEqual({ amount: "2", unit: "hours" });
    expect(notificationsOf(draft)).toEqual(NOTIFICATIONS);
    const job = { ...formFromJob({ ...jobOf(), notifications: NOTIFICATIONS }) };
    expect(bodyOf(job).notifications).toEqual(NOTIFICATIONS);
  });
  it("send none while nobody is told, and each destination to its event's list", () => {
    expect(notificationsOf(emptyNotifications())).toBeNull();
    expect(bodyOf(emptyForm("UTC")).notifications).toBeNull();
    expect(formFromJob({ ...jobOf(), notifications: null }).notifications).toEqual(emptyNotifications());
    const draft = emptyNotifications();
    draft.destinations = [
      { event: "on_success", kind: "webhook", url: " http://127.0.0.1:9000/hook ", secretRef: " " },
      { event: "on_success", kind: "slack", url: SLACK, secretRef: "kept-for-webhooks-only" },
    ];
    draft.noSkipped = false;
    expect(notificationsOf(draft)).toEqual({
      on_start: [],
      on_success: [
        { kind: "webhook", url: "http://127.0.0.1:9000/hook", secret_ref: null },
        { kind: "slack", url: SLACK },
      ],
      on_failure: [],
      on_deadline_missed: [],
      on_duration_warning: [],
      duration_warning_after: null,
      only_on_last_attempt: true,
      no_alert_for_skipped: false,
      no_alert_for_cancelled: true,
    });
    // the choices alone are kept (a job that tells nobody but was set so)
    expect(notificationsOf({ ...emptyNotifications(), noCancelled: false })).toMatchObject({ no_alert_for_cancelled: false, on_failure: [] });
    // a threshold that is not a whole number goes as typed: the server says what is wrong
    expect(notificationsOf({ ...emptyNotifications(), warnAfter: { amount: "1.5", unit: "hours" } })).toMatchObject({ duration_warning_after: "1.5" });
  });
  it("key each destination's errors by its place in its event's list", () => {
    expect(destinationKeys([{ event: "on_failure" }, { event: "on_success" }, { event: "on_failure" }])).toEqual([
      "notifications.on_failure.0",
      "notifications.on_success.0",
      "notifications.on_failure.1",
    ]);
  });
  it("check in the browser what needs no server: a URL each, at most 5 per event, a threshold for warnings", () => {
    const draft = emptyNotifications();
    draft.destinations = [emptyDestination("on_duration_warning"), ...Array.from({ length: 6 }, () => ({ ...emptyDestination(), url: HOOK }))];
    expect(checkNotifications(draft)).toEqual({
      "notifications.on_duration_warning.0.url": "Required: the URL to post to (https).",
      "notifications.on_failure": "Failure: at most 5 destinations (6 now).",
      "notifications.duration_warning_after": "Required for a duration warning: how long after its start a run is too long (1 minute to 7 days).",
    });
    const form = emptyForm("UTC");
    form.notifications.destinations = [emptyDestination()];
    expect(checkForm(form)).toEqual({ "notifications.on_failure.0.url": "Required: the URL to post to (https)." });
  });
  it("put the server's errors at their fields, with or without the member's tag in the path", () => {
    const https = "a destination is reached over https (plain http only on loopback)";
    expect(notificationError("notifications.on_failure.0.url", https)).toEqual(["notifications.on_failure.0.url", https]);
    expect(notificationError("notifications.on_success.1.slack.url", https)).toEqual(["notifications.on_success.1.url", https]);
    expect(notificationError("notifications.on_success.0.teams.secret_ref", "Extra inputs are not permitted")).toEqual([
      "notifications.on_success.0.secret_ref",
      "Extra inputs are not permitted",
    ]);
    expect(notificationError("notifications.on_start.0.secret_ref", "String should match pattern '^[a-z0-9][a-z0-9-]{0,39}$'")?.[1]).toMatch(
      /^Not a signing secret's name/,
    );
    expect(notificationError("notifications.on_failure.0", "Input tag 'email' found using 'kind' does not match")).toEqual([
      "notifications.on_failure.0",
      "Input tag 'email' found using 'kind' does not match",
    ]);
    expect(notificationError("notifications.on_failure", "List should have at most 5 items after validation, not 6")).toEqual([
      "notifications.on_failure",
      "Failure: List should have at most 5 items after validation, not 6",
    ]);
    expect(notificationError("notifications", "on_duration_warning needs duration_warning_after (e.g. PT2H)")?.[0]).toBe(
      "notifications.duration_warning_after",
    );
    expect(notificationError("notifications.duration_warning_after", "Input should be greater than or equal to 1 minute")?.[0]).toBe(
      "notifications.duration_warning_after",
    );
    expect(notificationError("notifications.on_fail", "Extra inputs are not permitted")).toEqual(["notifications", "on_fail: Extra inputs are not permitted"]);
    expect(notificationError("name", "x")).toBeNull();
    expect(fieldErrors({ "notifications.on_success.1.slack.url": https, name: "Field required" })).toEqual({
      "notifications.on_success.1.url": https,
      name: "Field required",
    });
  });
});

function jobOf(): Job {
  return {
    job_id: "01KAB3X9M2Q8Z0C7D5E4F6G1H2",
    tenant: "default",
    status: "ACTIVE",
    version: 1,
    name: "churn",
    job_type: "model_training",
    task: { kind: "databricks_job", job_id: 7, parameters: {} },
    schedule: { cron: "30 1 * * *", timezone: "UTC" },
    overlap: "skip",
    misfire: "fire_once",
    priority: "normal",
    pool: "default",
    slots: 1,
    record_skipped_while_paused: false,
  } as unknown as Job;
}
