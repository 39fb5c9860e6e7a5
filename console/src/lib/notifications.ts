// Notifications: who hears about a job's runs (a webhook, Teams, Slack) in words and in the form;
// what a test and a run's notices say. Only hosts are shown outside the form: a Teams or Slack
// webhook URL holds a token.
import type {
  DeliveryTry,
  Destination,
  DestinationKind,
  Notice,
  NoticeEvent,
  NoticeState,
  Notifications,
  NotificationTest,
} from "../api/types";
import { type Duration, fromIso, inWords, toIso } from "./duration";

/** The job's lists of destinations, one per event. */
export type EventList = "on_start" | "on_success" | "on_failure" | "on_deadline_missed" | "on_duration_warning";

export const EVENT_LISTS: readonly { list: EventList; label: string; help: string }[] = [
  { list: "on_start", label: "Start", help: "When a run's first attempt starts." },
  { list: "on_success", label: "Success", help: "When a run succeeds." },
  { list: "on_failure", label: "Failure", help: "When a run fails or times out." },
  { list: "on_deadline_missed", label: "Deadline missed", help: "When a run is unfinished at the job's deadline." },
  { list: "on_duration_warning", label: "Duration warning", help: "When a run is still running a set time after it started." },
];

export const KINDS: readonly { kind: DestinationKind; label: string; name: string }[] = [
  { kind: "webhook", label: "Webhook (JSON)", name: "webhook" },
  { kind: "teams", label: "Microsoft Teams", name: "Teams" },
  { kind: "slack", label: "Slack", name: "Slack" },
];
const KIND_NAME = Object.fromEntries(KINDS.map((k) => [k.kind, k.name])) as Record<DestinationKind, string>;

export const MAX_PER_EVENT = 5;

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const capital = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);

// --- in words -------------------------------------------------------------------------------------

/** The host of a destination's URL (never the URL: it may hold a token). */
export function hostOf(url: string): string {
  try {
    return new URL(url.trim()).hostname || "unknown host";
  } catch {
    return "unknown host";
  }
}

/** "Slack (hooks.slack.com)", "webhook (hooks.example.com)": a destination the API names by its host. */
export function kindAndHost(kind: DestinationKind, host: string): string {
  return `${KIND_NAME[kind]} (${host || "unknown host"})`;
}

/** A destination of the job's definition in words: its kind and host. */
export function destinationInWords(d: Pick<Destination, "kind" | "url">): string {
  return kindAndHost(d.kind, hostOf(d.url));
}

/** Whether a job's notifications tell anybody anything. */
export function hasDestinations(n: Notifications | null | undefined): n is Notifications {
  return !!n && EVENT_LISTS.some(({ list }) => (n[list] ?? []).length > 0);
}

export interface NotificationLine {
  event: string; // "Failure", "Duration warning (still running after 2 hours)"
  to: string; // "Slack (hooks.slack.com), webhook (hooks.example.com)"
}

/** Who is told about what, one line per event that tells anybody. */
export function notificationLines(n: Notifications | null | undefined): NotificationLine[] {
  if (!n) return [];
  return EVENT_LISTS.flatMap(({ list, label }) => {
    const destinations = n[list] ?? [];
    if (destinations.length === 0) return [];
    const event =
      list === "on_duration_warning" && n.duration_warning_after
        ? `${label} (still running after ${inWords(n.duration_warning_after)})`
        : label;
    return [{ event, to: destinations.map(destinationInWords).join(", ") }];
  });
}

/** "Failure → Slack (hooks.slack.com), webhook (hooks.example.com)" */
export const lineInWords = (line: NotificationLine) => `${line.event} → ${line.to}`;

/** What the failure destinations are told besides failures, or "" when there are none. */
export function rulesInWords(n: Notifications | null | undefined): string {
  if (!n || (n.on_failure ?? []).length === 0) return "";
  const last = n.only_on_last_attempt ?? true;
  const quietSkipped = n.no_alert_for_skipped ?? true;
  const quietCancelled = n.no_alert_for_cancelled ?? true;
  const parts = [
    last
      ? "A failure is told once no retry is left (a failed attempt that will be retried tells nobody)"
      : "Each failed attempt is told, even one that will be retried",
  ];
  const told = [!quietSkipped && "skipped", !quietCancelled && "cancelled"].filter(Boolean).join(" and ");
  const quiet = [quietSkipped && "skipped", quietCancelled && "cancelled"].filter(Boolean).join(" and ");
  if (told) parts.push(`${capital(told)} runs are told to the failure destinations too`);
  if (quiet) parts.push(`${capital(quiet)} runs tell nobody`);
  return `${parts.join(". ")}.`;
}

/** How a delivery went, after the destination's host: "HTTP 503 Service Unavailable", "could not connect". */
function failureInWords(status: number | null | undefined, error: string | null | undefined): string {
  if (error) return status != null && !error.startsWith(`HTTP ${status}`) ? `${error} (HTTP ${status})` : error;
  return status != null ? `HTTP ${status}` : "no answer";
}

/** "delivered, HTTP 200 in 8 ms", "failed, HTTP 503 Service Unavailable after 5 ms". */
export function testResultInWords(r: NotificationTest): string {
  if (r.delivered) return `delivered, HTTP ${r.status ?? "?"} in ${r.ms} ms`;
  const sent = r.status != null || r.ms > 0;
  return `failed, ${failureInWords(r.status, r.error)}${sent ? ` after ${r.ms} ms` : ""}`;
}

/** "Sent a test to 2 destinations: 1 delivered, 1 failed." */
export function testSummary(items: readonly NotificationTest[]): string {
  const delivered = items.filter((i) => i.delivered).length;
  const failed = items.length - delivered;
  const parts = [delivered > 0 && `${delivered} delivered`, failed > 0 && `${failed} failed`].filter(Boolean).join(", ");
  return `Sent a test to ${plural(items.length, "destination")}: ${parts}.`;
}

const NOTICE_EVENT: Record<NoticeEvent, string> = {
  start: "Start",
  success: "Success",
  failure: "Failure",
  skipped: "Skipped",
  cancelled: "Cancelled",
  deadline_missed: "Deadline missed",
  duration_warning: "Duration warning",
};

/** "Failure", "Failure of attempt 2" (an attempt that was retried, when every failed attempt is told). */
export function noticeEventInWords(n: Pick<Notice, "event" | "attempt">): string {
  return n.event === "failure" && n.attempt > 1 ? `${NOTICE_EVENT[n.event]} of attempt ${n.attempt}` : NOTICE_EVENT[n.event];
}

export const NOTICE_STATES: Record<NoticeState, string> = {
  pending: "Pending",
  delivered: "Delivered",
  failed: "Failed",
  not_needed: "Not needed",
};

/** What a notice's state means, in a few words. */
export function noticeStateHelp(n: Pick<Notice, "state" | "tries" | "event">): string {
  switch (n.state) {
    case "pending":
      if (n.tries.length > 0) return `tried ${plural(n.tries.length, "time")}, will try again`;
      return n.event === "duration_warning" ? "sent only if the run is still running then" : "not sent yet";
    case "delivered":
      return n.tries.length > 1 ? `on try ${n.tries.length}` : "";
    case "failed":
      return `every try failed (${n.tries.length}); no more tries`;
    case "not_needed":
      return n.event === "duration_warning" ? "the run ended in time" : "not sent";
  }
}

/** One try at delivering a notice: "delivered, HTTP 200", "HTTP 503 Service Unavailable". */
export function tryInWords(t: Pick<DeliveryTry, "status" | "error">): string {
  return t.error == null && t.status != null && t.status < 300 ? `delivered, HTTP ${t.status}` : failureInWords(t.status, t.error);
}

/** "2 notifications: 1 delivered, 1 pending." */
export function noticesSummary(notices: readonly Pick<Notice, "state">[]): string {
  const counts = (["delivered", "failed", "pending", "not_needed"] as const)
    .map((state) => [state, notices.filter((n) => n.state === state).length] as const)
    .filter(([, n]) => n > 0)
    .map(([state, n]) => `${n} ${NOTICE_STATES[state].toLowerCase()}`);
  return `${plural(notices.length, "notification")}: ${counts.join(", ")}.`;
}

/**
 * A value of the audit trail under `definition.notifications` with each destination's URL cut to
 * its host ("hooks.slack.com/…"): the trail keeps whole URLs, and a Teams or Slack URL holds a token.
 */
export function hideUrls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(hideUrls);
  if (value && typeof value === "object")
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, k === "url" && typeof v === "string" ? `${hostOf(v)}/…` : hideUrls(v)]),
    );
  return value;
}

// --- the form -------------------------------------------------------------------------------------

export interface DestinationDraft {
  event: EventList;
  kind: DestinationKind;
  url: string;
  secretRef: string; // webhooks only; "" for none
}

export interface NotificationsDraft {
  /** In the order they were added; each event's list keeps their order. */
  destinations: DestinationDraft[];
  warnAfter: Duration; // duration_warning_after
  onlyLastAttempt: boolean;
  noSkipped: boolean;
  noCancelled: boolean;
}

export function emptyNotifications(): NotificationsDraft {
  return {
    destinations: [],
    warnAfter: { amount: "", unit: "hours" },
    onlyLastAttempt: true,
    noSkipped: true,
    noCancelled: true,
  };
}

export function emptyDestination(event: EventList = "on_failure"): DestinationDraft {
  return { event, kind: "webhook", url: "", secretRef: "" };
}

/** Whether the three choices are as the API defaults them (each true). */
export function quietByDefault(d: NotificationsDraft): boolean {
  return d.onlyLastAttempt && d.noSkipped && d.noCancelled;
}

/** A job's notifications as the form holds them. */
export function notificationsDraftOf(n: Notifications | null | undefined): NotificationsDraft {
  const draft = emptyNotifications();
  if (!n) return draft;
  draft.destinations = EVENT_LISTS.flatMap(({ list }) =>
    (n[list] ?? []).map((d) => ({
      event: list,
      kind: d.kind,
      url: d.url,
      secretRef: d.kind === "webhook" ? (d.secret_ref ?? "") : "",
    })),
  );
  draft.warnAfter = n.duration_warning_after ? fromIso(n.duration_warning_after, "hours") : draft.warnAfter;
  draft.onlyLastAttempt = n.only_on_last_attempt ?? true;
  draft.noSkipped = n.no_alert_for_skipped ?? true;
  draft.noCancelled = n.no_alert_for_cancelled ?? true;
  return draft;
}

function destinationOf(d: DestinationDraft): Destination {
  const url = d.url.trim();
  if (d.kind === "webhook") return { kind: "webhook", url, secret_ref: d.secretRef.trim() || null };
  return { kind: d.kind, url };
}

/**
 * The `notifications` to send: null when nobody is told and nothing differs from the defaults.
 * A threshold that is not a whole number goes as typed, so that the server says what is wrong.
 */
export function notificationsOf(d: NotificationsDraft): Record<string, unknown> | null {
  const warn = toIso(d.warnAfter);
  if (d.destinations.length === 0 && quietByDefault(d) && warn === "") return null;
  const lists = Object.fromEntries(EVENT_LISTS.map(({ list }) => [list, [] as Destination[]])) as Record<EventList, Destination[]>;
  for (const destination of d.destinations) lists[destination.event].push(destinationOf(destination));
  return {
    ...lists,
    duration_warning_after: warn === null ? d.warnAfter.amount : warn || null,
    only_on_last_attempt: d.onlyLastAttempt,
    no_alert_for_skipped: d.noSkipped,
    no_alert_for_cancelled: d.noCancelled,
  };
}

/**
 * Each destination's place in the API's body, as the prefix of its fields' error keys:
 * `notifications.on_failure.1` for the second failure destination (the server's paths).
 */
export function destinationKeys(destinations: readonly Pick<DestinationDraft, "event">[]): string[] {
  const seen: Partial<Record<EventList, number>> = {};
  return destinations.map((d) => {
    const index = seen[d.event] ?? 0;
    seen[d.event] = index + 1;
    return `notifications.${d.event}.${index}`;
  });
}

/** Whether the form shows the duration warning's threshold (a destination wants it, or it is set). */
export function wantsWarnAfter(d: NotificationsDraft): boolean {
  return d.destinations.some((x) => x.event === "on_duration_warning") || d.warnAfter.amount.trim() !== "";
}

/** What the browser can tell before asking the server, by error key (`notifications.on_failure.0.url`). */
export function checkNotifications(d: NotificationsDraft): Record<string, string> {
  const errors: Record<string, string> = {};
  const keys = destinationKeys(d.destinations);
  d.destinations.forEach((destination, i) => {
    if (destination.url.trim() === "") errors[`${keys[i]}.url`] = "Required: the URL to post to (https).";
  });
  for (const { list, label } of EVENT_LISTS) {
    const n = d.destinations.filter((x) => x.event === list).length;
    if (n > MAX_PER_EVENT) errors[`notifications.${list}`] = `${label}: at most ${MAX_PER_EVENT} destinations (${n} now).`;
  }
  if (d.destinations.some((x) => x.event === "on_duration_warning") && d.warnAfter.amount.trim() === "")
    errors["notifications.duration_warning_after"] =
      "Required for a duration warning: how long after its start a run is too long (1 minute to 7 days).";
  return errors;
}

const FIELDS = new Set(["url", "secret_ref", "kind"]);
const LISTS = new Set<string>(EVENT_LISTS.map((e) => e.list));
const SECRET_HELP =
  "Not a signing secret's name: up to 40 lowercase letters, digits and hyphens, starting with a letter or digit.";

/**
 * A server error about the notifications as the form's error key and message: pydantic's path
 * `notifications.on_failure.0.slack.url` (it may name the union member) becomes
 * `notifications.on_failure.0.url`. null: not about the notifications.
 */
export function notificationError(path: string, message: string): [string, string] | null {
  const m = /^notifications(?:\.([a-z_]+)(?:\.(\d+)(?:\.(?:webhook|teams|slack))?(?:\.([a-z_]+))?)?)?(?:\..*)?$/.exec(path);
  if (!m) return null;
  const [, list, index, field] = m;
  const warn = "notifications.duration_warning_after";
  if (!list) return [/duration_warning_after/.test(message) ? warn : "notifications", message];
  if (list === "duration_warning_after") return [warn, message];
  if (!LISTS.has(list)) return ["notifications", `${list}: ${message}`];
  const label = EVENT_LISTS.find((e) => e.list === list)?.label ?? list;
  if (index === undefined) return [`notifications.${list}`, `${label}: ${message}`];
  if (!field || !FIELDS.has(field)) return [`notifications.${list}.${index}`, message];
  const text = field === "secret_ref" && message.startsWith("String should match pattern") ? SECRET_HELP : message;
  return [`notifications.${list}.${index}.${field}`, text];
}
