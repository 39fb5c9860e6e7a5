import cronstrue from "cronstrue";

import type { JobTrigger, ScheduleSpec } from "../api/types";
import { inWords } from "./duration";
import { formatInstant } from "./time";
import { noScheduleInWords } from "./triggers";

export type Reading = { ok: true; text: string } | { ok: false; text: string };

/** The plain-language reading of a five-field cron expression ("At 02:30 AM"). */
export function readCron(expression: string): Reading {
  const text = expression.trim();
  if (!text) return { ok: false, text: "" };
  if (text.split(/\s+/).length !== 5) return { ok: false, text: "A cron expression has five fields" };
  try {
    return { ok: true, text: cronstrue.toString(text, { verbose: false, throwExceptionOnParseError: true }) };
  } catch (err) {
    return { ok: false, text: typeof err === "string" ? err : "Not a valid cron expression" };
  }
}

/**
 * A schedule in words, for the jobs table and the details. Without a schedule, what else starts the
 * job when its `triggers` are known ("No schedule: runs when files arrive"); just "No schedule" if not.
 */
export function scheduleInWords(spec: ScheduleSpec | null | undefined, triggers?: readonly Pick<JobTrigger, "kind">[]): string {
  if (!spec) return noScheduleInWords(triggers);
  const zone = spec.timezone || "UTC";
  if (spec.cron) {
    const reading = readCron(spec.cron);
    return `${reading.ok ? reading.text : spec.cron} (${zone})`;
  }
  if (spec.at) return `Once at ${formatInstant(spec.at, zone)}`;
  if (spec.every) return `Every ${inWords(spec.every)}`;
  return "—";
}
