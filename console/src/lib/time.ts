// Wall-clock times in IANA zones, with nothing but Intl (no time-zone data shipped).

const pad = (n: number, width = 2) => String(n).padStart(width, "0");

// Building an Intl.DateTimeFormat costs far more than using one: keep one per zone and style.
const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(key: string, make: () => Intl.DateTimeFormat): Intl.DateTimeFormat {
  let found = formatters.get(key);
  if (!found) {
    found = make();
    formatters.set(key, found);
  }
  return found;
}

export function browserZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

export function allZones(): string[] {
  const intl = Intl as unknown as { supportedValuesOf?: (key: string) => string[] };
  const zones = intl.supportedValuesOf ? intl.supportedValuesOf("timeZone") : [];
  return zones.includes("UTC") ? zones : ["UTC", ...zones];
}

export function isZone(zone: string): boolean {
  try {
    formatter(`zone:${zone}`, () => new Intl.DateTimeFormat("en-US", { timeZone: zone }));
    return zone.length > 0;
  } catch {
    return false;
  }
}

/** Minutes east of UTC in `zone` at the instant `utcMs`. */
export function offsetMinutes(zone: string, utcMs: number): number {
  const parts = formatter(
    `parts:${zone}`,
    () =>
      new Intl.DateTimeFormat("en-US", {
        timeZone: zone,
        hourCycle: "h23",
        year: "numeric",
        month: "2-digit",
        day: "2-digit",
        hour: "2-digit",
        minute: "2-digit",
        second: "2-digit",
      }),
  ).formatToParts(new Date(utcMs));
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  const asUtc = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second"));
  return Math.round((asUtc - Math.floor(utcMs / 1000) * 1000) / 60000);
}

function formatOffset(minutes: number): string {
  const sign = minutes < 0 ? "-" : "+";
  const abs = Math.abs(minutes);
  return `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

const LOCAL = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/;

/**
 * A datetime-local value ("2027-03-14T01:30") read as wall-clock time in `zone`, as ISO-8601 with
 * that zone's offset at that time. A time the zone skips (spring forward) moves forward by the gap.
 */
export function zonedToIso(local: string, zone: string): string | null {
  const m = LOCAL.exec(local);
  if (!m || !isZone(zone)) return null;
  const [y, mo, d, h, mi, s] = m.slice(1).map((v) => Number(v ?? 0)) as [number, number, number, number, number, number];
  const wall = Date.UTC(y, mo - 1, d, h, mi, s);
  const DAY = 86_400_000;
  const before = offsetMinutes(zone, wall - DAY);
  const after = offsetMinutes(zone, wall + DAY);
  // The instants whose wall-clock time in `zone` is `local`: one, two (a repeated hour: take the
  // first) or none (a skipped hour: read it with the offset before the change, i.e. move forward).
  const valid = [before, after].map((o) => wall - o * 60000).filter((t) => wall - offsetMinutes(zone, t) * 60000 === t);
  const instant = valid.length > 0 ? Math.min(...valid) : wall - before * 60000;
  const offset = offsetMinutes(zone, instant);
  const shown = new Date(instant + offset * 60000);
  return (
    `${shown.getUTCFullYear()}-${pad(shown.getUTCMonth() + 1)}-${pad(shown.getUTCDate())}` +
    `T${pad(shown.getUTCHours())}:${pad(shown.getUTCMinutes())}:${pad(shown.getUTCSeconds())}${formatOffset(offset)}`
  );
}

/** An instant, as a datetime-local value in `zone` (for pre-filling a form). */
export function isoToZoned(iso: string, zone: string): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return "";
  const shown = new Date(ms + offsetMinutes(isZone(zone) ? zone : "UTC", ms) * 60000);
  return (
    `${shown.getUTCFullYear()}-${pad(shown.getUTCMonth() + 1)}-${pad(shown.getUTCDate())}` +
    `T${pad(shown.getUTCHours())}:${pad(shown.getUTCMinutes())}`
  );
}

/** "Mar 14, 2027, 3:00 AM EDT": an instant in a zone (the browser's by default). */
export function formatInstant(iso: string | null | undefined, zone?: string): string {
  if (!iso) return "—";
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  const timeZone = zone && isZone(zone) ? zone : undefined;
  return formatter(`show:${timeZone ?? ""}`, () => new Intl.DateTimeFormat("en-US", { timeZone, dateStyle: "medium", timeStyle: "short" }))
    .format(new Date(ms))
    .concat(" ", zoneAbbreviation(ms, zone));
}

/** "Mar 14, 2027, 3:00:15 AM EDT": an instant to the second, in the browser's zone (tries seconds apart). */
export function formatPrecise(iso: string | null | undefined): string {
  if (!iso) return "—";
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  return formatter("precise", () => new Intl.DateTimeFormat("en-US", { dateStyle: "medium", timeStyle: "medium" }))
    .format(new Date(ms))
    .concat(" ", zoneAbbreviation(ms));
}

function zoneAbbreviation(ms: number, zone?: string): string {
  const timeZone = zone && isZone(zone) ? zone : undefined;
  const part = formatter(`name:${timeZone ?? ""}`, () => new Intl.DateTimeFormat("en-US", { timeZone, timeZoneName: "short" }))
    .formatToParts(new Date(ms))
    .find((p) => p.type === "timeZoneName");
  return part?.value ?? "";
}

/** "4 min 5 s" between two instants, or "" if either is missing. */
export function duration(from?: string | null, to?: string | null): string {
  if (!from || !to) return "";
  const seconds = Math.max(0, Math.round((Date.parse(to) - Date.parse(from)) / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${seconds % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/**
 * A wait in seconds as a person reads it, two units at most: "45s", "2m 30s", "1h 5m", "3d 2h".
 * "0s" for nothing (or a negative or missing wait, which a clock skew can produce).
 */
export function formatWait(seconds: number | null | undefined): string {
  const total = Math.max(0, Math.floor(Number.isFinite(seconds) ? (seconds as number) : 0));
  const units: [string, number][] = [
    ["d", 86_400],
    ["h", 3_600],
    ["m", 60],
    ["s", 1],
  ];
  const parts: string[] = [];
  let rest = total;
  for (const [letter, size] of units) {
    const amount = Math.floor(rest / size);
    rest -= amount * size;
    if (amount > 0 || parts.length > 0) parts.push(`${amount}${letter}`);
    if (parts.length === 2) break;
  }
  const shown = parts.filter((p, i) => i === 0 || !p.startsWith("0"));
  return shown.length > 0 ? shown.join(" ") : "0s";
}

/** "~10:05 AM" today, "~Mar 15, 10:05 AM" another day: an estimate, in the browser's zone. */
export function formatEstimate(iso: string | null | undefined, now: number = Date.now()): string {
  if (!iso) return "unknown";
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  if (ms <= now) return "~now";
  const sameDay = new Date(ms).toDateString() === new Date(now).toDateString();
  const shown = formatter(
    `estimate:${sameDay}`,
    () =>
      new Intl.DateTimeFormat("en-US", sameDay ? { timeStyle: "short" } : { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" }),
  ).format(new Date(ms));
  return `~${shown}`;
}
