// Event triggers in words and in the form: files arriving, webhook calls, other jobs' runs ending;
// why a run started; what a webhook call may carry.
import type { AfterTrigger, FileArrivalTrigger, JobTrigger, Run } from "../api/types";
import { type Duration, fromIso, inWords, toIso, type Unit } from "./duration";

// --- in words -------------------------------------------------------------------------------------

/** Where a file arrival trigger looks, as a pattern: "landing/sales/*.parquet", "acct: landing/*". */
export function filePattern(t: Pick<FileArrivalTrigger, "container" | "prefix" | "suffix" | "account">): string {
  const where = `${t.container}/${t.prefix ?? ""}*${t.suffix ?? ""}`;
  return t.account ? `${t.account}: ${where}` : where;
}

const seconds = (iso: string | null | undefined): number => {
  const { amount, unit } = fromIso(iso, "seconds");
  const per: Record<Unit, number> = { seconds: 1, minutes: 60, hours: 3600, days: 86400 };
  return (Number(amount) || 0) * per[unit];
};

/** The waits of a file arrival trigger: ", waiting 1 minute after the last file, at most one run every 5 minutes". */
export function fileWaitsInWords(t: Pick<FileArrivalTrigger, "wait_after_last_change" | "min_time_between_triggers">): string {
  const parts: string[] = [];
  if (seconds(t.wait_after_last_change) > 0) parts.push(`waiting ${inWords(t.wait_after_last_change)} after the last file`);
  if (seconds(t.min_time_between_triggers) > 0) parts.push(`at most one run every ${inWords(t.min_time_between_triggers)}`);
  return parts.length ? `, ${parts.join(", ")}` : "";
}

/** "When a blob is created in landing/sales/*.parquet, waiting 1 minute after the last file, ..." */
export function fileTriggerInWords(t: FileArrivalTrigger): string {
  return `When a blob is created in ${filePattern(t)}${fileWaitsInWords(t)}`;
}

export const CONDITIONS: Record<AfterTrigger["condition"], string> = {
  all_succeeded: "when all have succeeded",
  any_succeeded: "when any has succeeded",
  all_done: "when all have ended",
};

/** "when all have succeeded, within 6 hours" (the jobs are named beside it, as links). */
export function afterInWords(t: AfterTrigger): string {
  return `${CONDITIONS[t.condition ?? "all_succeeded"]}, within ${inWords(t.within ?? "PT12H")}`;
}

/** What a job without a schedule runs on: "No schedule: runs after other jobs or when files arrive". */
export function noScheduleInWords(triggers: readonly Pick<JobTrigger, "kind">[] | undefined): string {
  if (!triggers) return "No schedule";
  const kinds = new Set(triggers.map((t) => t.kind));
  const ways = [
    kinds.has("after") && "after other jobs",
    kinds.has("file_arrival") && "when files arrive",
    kinds.has("webhook") && "when called (webhook)",
  ].filter(Boolean);
  return ways.length ? `No schedule: runs ${ways.join(" or ")}` : "No schedule: runs only when asked";
}

// --- why a run started ----------------------------------------------------------------------------

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/**
 * Why a run started, in a word or two: "Schedule", "Run now", "Retry", "Backfill", "After prepare",
 * "3 files", "Webhook order-42". `names` gives upstream jobs' names by id (the id when unknown).
 */
export function runOrigin(run: Pick<Run, "trigger" | "cause">, names: (jobId: string) => string = (id) => id): string {
  const cause = run.cause;
  switch (run.trigger) {
    case "schedule":
      return "Schedule";
    case "manual":
      return "Run now";
    case "retry":
      return "Retry";
    case "backfill":
      return "Backfill";
    case "after": {
      const jobs = Object.keys(cause?.runs ?? {});
      return jobs.length ? `After ${jobs.map(names).join(", ")}` : "After other jobs";
    }
    case "file_arrival":
      return plural(cause?.files?.length ?? 0, "file");
    case "webhook":
      return cause?.idempotency_key ? `Webhook ${cause.idempotency_key}` : "Webhook";
    default:
      return String(run.trigger);
  }
}

/** Whether a run has more to say about its cause than its label (files, key, payload, upstream runs). */
export function hasCauseDetails(run: Pick<Run, "cause">): boolean {
  const c = run.cause;
  return !!c && (Object.keys(c.runs ?? {}).length > 0 || (c.files ?? []).length > 0 || c.idempotency_key != null || c.payload != null);
}

/** What a file arrival or webhook run was started by, as a string: its Idempotency-Key, or its files' event ids. */
function eventOf(run: Pick<Run, "trigger" | "cause">): string | null {
  const c = run.cause;
  if (!c) return null;
  if (run.trigger === "webhook" && c.idempotency_key != null) return `key ${c.idempotency_key}`;
  const files = c.files ?? [];
  if (run.trigger === "file_arrival" && files.length > 0) return `files ${files.map((f) => f.event_id).sort().join(" ")}`;
  return null;
}

const REPLAY = /^replay of \S+/;

/**
 * A run that replays one SKIPPED while its job was paused (POST /api/jobs/{id}/replay), in words:
 * "replay of h-1795671000000-abc by Ada", or null. The server says so in the run's reason only
 * until the run starts (its reason then says what came next); after that the cause it copied tells:
 * the same Idempotency-Key, or the same file events, as a run of `runs` skipped because the job was
 * paused ("replay of h-1795671000000-abc"), since a key or an event starts no other run.
 */
export function replayInWords(
  run: Pick<Run, "run_key" | "trigger" | "cause" | "state" | "reason">,
  runs: readonly Pick<Run, "run_key" | "trigger" | "cause" | "state" | "reason">[],
): string | null {
  if (run.reason && REPLAY.test(run.reason)) return run.reason;
  if (run.state === "SKIPPED") return null;
  const event = eventOf(run);
  if (!event) return null;
  const skipped = runs.find((r) => r.state === "SKIPPED" && r.reason === "paused" && r.run_key !== run.run_key && eventOf(r) === event);
  return skipped ? `replay of ${skipped.run_key}` : null;
}

// --- the form -------------------------------------------------------------------------------------

export interface FileDraft {
  kind: "file_arrival";
  container: string;
  prefix: string;
  suffix: string;
  account: string; // "" for any account
  wait: Duration; // wait_after_last_change
  gap: Duration; // min_time_between_triggers
}
/** A trigger as the form holds it: `after` ones are kept as they are (they are edited through the API). */
export type TriggerDraft = { kind: "after"; kept: AfterTrigger } | FileDraft | { kind: "webhook" };

export const MAX_WAIT_S = 3600; // wait_after_last_change ≤ PT1H
export const MAX_GAP_S = 86400; // min_time_between_triggers ≤ P1D

export function emptyFileDraft(): FileDraft {
  return {
    kind: "file_arrival",
    container: "",
    prefix: "",
    suffix: "",
    account: "",
    wait: { amount: "0", unit: "minutes" },
    gap: { amount: "0", unit: "minutes" },
  };
}

/** A job's trigger as the form holds it. */
export function draftOf(t: JobTrigger): TriggerDraft {
  if (t.kind === "after") return { kind: "after", kept: t };
  if (t.kind === "webhook") return { kind: "webhook" };
  return {
    kind: "file_arrival",
    container: t.container,
    prefix: t.prefix ?? "",
    suffix: t.suffix ?? "",
    account: t.account ?? "",
    wait: durationOf(t.wait_after_last_change),
    gap: durationOf(t.min_time_between_triggers),
  };
}

/** An ISO duration for a field: "PT0S" reads as 0 minutes (not 0 seconds), the others in their largest unit. */
function durationOf(iso: string | null | undefined): Duration {
  const d = fromIso(iso ?? "PT0S", "minutes");
  return d.amount === "0" || d.amount === "" ? { amount: "0", unit: "minutes" } : d;
}

/** A duration field's value as ISO-8601: empty is none ("PT0S"); null when not a whole number. */
export function durationIso(d: Duration): string | null {
  const iso = toIso(d);
  if (iso === null) return null;
  if (iso === "" || /^PT?0[SMHD]$/.test(iso)) return "PT0S";
  return iso;
}

/** The trigger to send. An amount that is not a whole number goes as typed (checkTriggers stops it first). */
export function triggerOf(draft: TriggerDraft): JobTrigger {
  if (draft.kind === "after") return draft.kept;
  if (draft.kind === "webhook") return { kind: "webhook" };
  return {
    kind: "file_arrival",
    container: draft.container.trim(),
    prefix: draft.prefix,
    suffix: draft.suffix,
    account: draft.account.trim() || null,
    wait_after_last_change: durationIso(draft.wait) ?? draft.wait.amount,
    min_time_between_triggers: durationIso(draft.gap) ?? draft.gap.amount,
  };
}

/** What the browser can tell about the triggers before asking the server, by field key (`triggers.{i}.{field}`). */
export function checkTriggers(drafts: readonly TriggerDraft[]): Record<string, string> {
  const errors: Record<string, string> = {};
  drafts.forEach((d, i) => {
    if (d.kind !== "file_arrival") return;
    const limits: [keyof FileDraft & ("wait" | "gap"), string, number, string][] = [
      ["wait", "wait_after_last_change", MAX_WAIT_S, "1 hour"],
      ["gap", "min_time_between_triggers", MAX_GAP_S, "1 day"],
    ];
    for (const [key, field, max, most] of limits) {
      const iso = durationIso(d[key]);
      if (iso === null) errors[`triggers.${i}.${field}`] = "A whole number (0 for none).";
      else if (seconds(iso) > max) errors[`triggers.${i}.${field}`] = `At most ${most}.`;
    }
  });
  if (drafts.filter((d) => d.kind === "webhook").length > 1) errors.triggers = "A job has at most one webhook trigger.";
  return errors;
}

const PATTERN_HELP: Record<string, string> = {
  container:
    "Not a container name: 3 to 63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit.",
  account: "Not a storage account name: 3 to 24 lowercase letters and digits.",
};

/**
 * A server error about a trigger as the form's field key and message: pydantic's path
 * `triggers.1.file_arrival.container` (it names the union member) becomes `triggers.1.container`,
 * and a pattern it quotes becomes the rule in words. null: not about a trigger.
 */
export function triggerError(path: string, message: string): [string, string] | null {
  const m = /^triggers(?:\.(\d+)(?:\.(?:after|file_arrival|webhook))?(?:\.([a-z_]+))?)?(?:\..*)?$/.exec(path);
  if (!m) return null;
  const [, index, field] = m;
  if (index === undefined) return ["triggers", message];
  if (!field) return [`triggers.${index}`, message];
  const text = message.startsWith("String should match pattern") && PATTERN_HELP[field] ? PATTERN_HELP[field] : message;
  return [`triggers.${index}.${field}`, text];
}

// --- webhook calls ----------------------------------------------------------------------------------

const KEY = /^[A-Za-z_][A-Za-z0-9_-]{0,127}$/;
const HEADER = /^[\x21-\x7e][\x20-\x7e]*$/;
export const MAX_PARAMETERS = 64;
export const MAX_VALUE = 4096;

export type Parsed = { ok: true; value: Record<string, string | number | boolean> } | { ok: false; error: string };

/** A webhook call's parameters as typed: a JSON object of strings, numbers and booleans (empty: none). */
export function parseParameters(text: string): Parsed {
  if (text.trim() === "") return { ok: true, value: {} };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: `Not valid JSON: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    return { ok: false, error: 'A JSON object is expected, e.g. {"model": "churn", "full": true}.' };
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > MAX_PARAMETERS) return { ok: false, error: `At most ${MAX_PARAMETERS} parameters (${entries.length} given).` };
  for (const [key, v] of entries) {
    if (!KEY.test(key))
      return { ok: false, error: `"${key}" is not a parameter name: a letter or _ first, then letters, digits, _ or - (128 at most).` };
    if (typeof v !== "string" && typeof v !== "number" && typeof v !== "boolean")
      return { ok: false, error: `"${key}" must be a string, number or boolean.` };
    if (typeof v === "string" && v.length > MAX_VALUE) return { ok: false, error: `"${key}" is longer than ${MAX_VALUE} characters.` };
  }
  return { ok: true, value: value as Record<string, string | number | boolean> };
}

/** What is wrong with an Idempotency-Key, or "" (1 to 255 printable ASCII characters, not starting with a space). */
export function checkIdempotencyKey(key: string): string {
  if (key === "") return "Required: the same key again answers with the same run.";
  if (key.length > 255) return `At most 255 characters (${key.length} now).`;
  if (!HEADER.test(key)) return "Printable ASCII characters only, not starting with a space.";
  return "";
}

/** A fresh key for a call: a random UUID (crypto.randomUUID needs a secure context; this does not). */
export function newIdempotencyKey(): string {
  const c = globalThis.crypto;
  if (typeof c?.randomUUID === "function") return c.randomUUID();
  const b = c.getRandomValues(new Uint8Array(16));
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x40;
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The absolute URL a job's webhook is called at. */
export function webhookUrl(origin: string, jobId: string): string {
  return `${origin.replace(/\/$/, "")}/api/jobs/${encodeURIComponent(jobId)}/trigger`;
}

const shellQuote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

/** A curl command that calls the webhook; `$(uuidgen)`: a new key per call unless one is given. */
export function curlExample(url: string, parameters: string = '{"model": "churn", "full": true}', key?: string): string {
  return [
    `curl -X POST ${shellQuote(url)}`,
    `  -H "Idempotency-Key: ${key ?? "$(uuidgen)"}"`,
    `  -H 'Content-Type: application/json'`,
    `  -d ${shellQuote(parameters)}`,
  ].join(" \\\n");
}
