// Analytics (GET /api/analytics) as the page shows it: its controls as a link, figures as people
// read them, the charts' series, scales and spoken summaries, and the "Slowest" and "Most failing"
// rankings. Days are UTC days ("2026-12-06"), as the API counts them.

import { type AnalyticsGroup, type DayFigures, type GroupBy, JOB_TYPES } from "../api/types";

/** What a group, a day or the total adds up to. */
export type Figures = Omit<DayFigures, "day">;

export const WINDOWS: { value: string; label: string }[] = [
  { value: "P1D", label: "Today" },
  { value: "P7D", label: "Last 7 days" },
  { value: "P30D", label: "Last 30 days" },
  { value: "P90D", label: "Last 90 days" },
];
export const GROUPINGS: { value: GroupBy; label: string; plural: string }[] = [
  { value: "job_type", label: "Job type", plural: "job types" },
  { value: "job", label: "Job", plural: "jobs" },
  { value: "tenant", label: "Tenant", plural: "tenants" },
];
export const DEFAULT_WINDOW = "P7D";
export const DEFAULT_GROUP_BY: GroupBy = "job_type";
export const MAX_DAYS = 90; // the API's longest window
export const MAX_SERIES = 8; // lines per chart: more would not be told apart
export const MAX_ROWS = 10; // rows per ranking

const WINDOW = /^P(\d{1,3})D$/;

/** "P14D" for a window the API takes (whole days, P1D..P90D), else null. */
export function validWindow(value: string | null | undefined): string | null {
  const m = value ? WINDOW.exec(value.trim().toUpperCase()) : null;
  const days = m ? Number(m[1]) : 0;
  return days >= 1 && days <= MAX_DAYS ? `P${days}D` : null;
}

export const isGroupBy = (value: string | null | undefined): value is GroupBy => GROUPINGS.some((g) => g.value === value);

export interface Controls {
  window: string;
  groupBy: GroupBy;
  /** What the link asked for that the API would refuse (shown, then the default used instead). */
  ignored: string[];
}

/** The page's controls from its query (`?window=P30D&group_by=job`); the defaults for what is missing or wrong. */
export function readControls(params: URLSearchParams): Controls {
  const ignored: string[] = [];
  const askedWindow = params.get("window");
  const window = validWindow(askedWindow);
  if (askedWindow !== null && window === null) ignored.push(`window “${askedWindow}”`);
  const askedGroup = params.get("group_by");
  const groupBy = isGroupBy(askedGroup) ? askedGroup : null;
  if (askedGroup !== null && groupBy === null) ignored.push(`group by “${askedGroup}”`);
  return { window: window ?? DEFAULT_WINDOW, groupBy: groupBy ?? DEFAULT_GROUP_BY, ignored };
}

/** The query that links to these controls. */
export const controlsQuery = (window: string, groupBy: GroupBy) => ({ window, group_by: groupBy });

/** "Today", "Last 7 days", "Last 14 days" (a window a link chose). */
export function windowLabel(window: string): string {
  const known = WINDOWS.find((w) => w.value === window);
  if (known) return known.label;
  const days = Number(WINDOW.exec(window)?.[1] ?? 0);
  return days === 1 ? "Last day" : `Last ${days} days`;
}

/** The window select's options: the usual four, and the link's own window if it is another. */
export function windowOptions(current: string): { value: string; label: string }[] {
  return WINDOWS.some((w) => w.value === current) ? WINDOWS : [...WINDOWS, { value: current, label: windowLabel(current) }];
}

export const groupingOf = (groupBy: GroupBy) => GROUPINGS.find((g) => g.value === groupBy) ?? GROUPINGS[0]!;

/** "93.4%", "100%", "0.1%" (never 100% or 0% unless exactly), "—" for none. */
export function formatPercent(rate: number | null | undefined): string {
  if (rate == null || !Number.isFinite(rate)) return "—";
  let tenths = Math.round(rate * 1000);
  if (tenths >= 1000 && rate < 1) tenths = 999;
  if (tenths <= 0 && rate > 0) tenths = 1;
  return `${tenths % 10 === 0 ? tenths / 10 : (tenths / 10).toFixed(1)}%`;
}

/** "0.4 s", "45 s", "4 min 12 s", "2 h 5 min", "3 d 4 h"; "—" for none. */
export function formatSeconds(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds)) return "—";
  if (seconds <= 0) return "0 s";
  if (seconds < 9.95) {
    const tenths = Math.round(seconds * 10);
    return tenths === 0 ? "< 0.1 s" : `${tenths % 10 === 0 ? tenths / 10 : (tenths / 10).toFixed(1)} s`;
  }
  const total = Math.round(seconds);
  const two = (big: number, bigUnit: string, small: number, smallUnit: string) =>
    small > 0 ? `${big} ${bigUnit} ${small} ${smallUnit}` : `${big} ${bigUnit}`;
  if (total < 60) return `${total} s`;
  if (total < 3600) return two(Math.floor(total / 60), "min", total % 60, "s");
  const minutes = Math.round(total / 60);
  if (minutes < 24 * 60) return two(Math.floor(minutes / 60), "h", minutes % 60, "min");
  const hours = Math.round(minutes / 60);
  return two(Math.floor(hours / 24), "d", hours % 24, "h");
}

/** "1,234" */
export const formatCount = (n: number) => n.toLocaleString("en-US");

/** "12 succeeded, 2 failed, 1 timed out" (the outcomes that happened), or "no runs". */
export function outcomesInWords(f: Figures): string {
  const parts = (
    [
      [f.succeeded, "succeeded"],
      [f.failed, "failed"],
      [f.timed_out, "timed out"],
      [f.cancelled, "cancelled"],
      [f.skipped, "skipped"],
    ] as const
  )
    .filter(([n]) => n > 0)
    .map(([n, what]) => `${formatCount(n)} ${what}`);
  return parts.length > 0 ? parts.join(", ") : "no runs";
}

/** Failures as the rankings count them: failed (with pipelines that partly failed) and timed out. */
export const failures = (f: Figures) => f.failed + f.timed_out;

/** A group as people know it: a job type's label, a job's name, a tenant. */
export function groupName(group: Pick<AnalyticsGroup, "key" | "name">, groupBy: GroupBy): string {
  if (groupBy === "job") return group.name || group.key;
  if (groupBy === "job_type") return JOB_TYPES.find((t) => t.value === group.key)?.label ?? (group.key || "Unknown type");
  return group.key;
}

export const jobTypeLabel = (type: string | null | undefined) =>
  type ? JOB_TYPES.find((t) => t.value === type)?.label ?? type : "";

// Days ---------------------------------------------------------------------------------------

const DAY_MS = 86_400_000;
const dayMs = (iso: string) => Date.parse(`${iso}T00:00:00Z`);
const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** Every UTC day from `first` to `last`, both included ("2026-11-30" … "2026-12-06"). */
export function daysOf(first: string, last: string): string[] {
  const from = dayMs(first);
  const to = dayMs(last);
  if (Number.isNaN(from) || Number.isNaN(to) || to < from) return [];
  const out: string[] = [];
  for (let t = from; t <= to && out.length <= MAX_DAYS; t += DAY_MS) out.push(isoDay(t));
  return out;
}

const dayFormat = new Intl.DateTimeFormat("en-US", { timeZone: "UTC", month: "short", day: "numeric" });
const dayYearFormat = new Intl.DateTimeFormat("en-US", { timeZone: "UTC", month: "short", day: "numeric", year: "numeric" });

/** "Dec 6" */
export const formatDay = (iso: string) => dayFormat.format(new Date(dayMs(iso)));

/** "Nov 30 – Dec 6, 2026"; "Dec 6, 2026" for one day; the year on both sides when they differ. */
export function formatRange(first: string, last: string): string {
  const end = dayYearFormat.format(new Date(dayMs(last)));
  if (first === last) return end;
  const start = first.slice(0, 4) === last.slice(0, 4) ? formatDay(first) : dayYearFormat.format(new Date(dayMs(first)));
  return `${start} – ${end}`;
}

// Series -------------------------------------------------------------------------------------

export interface Series {
  key: string;
  label: string;
  /** One per day of the window; null on a day without the figure (no runs, or none it counts). */
  values: (number | null)[];
  /** The figure over the whole window. */
  overall: number | null;
}

export type Measure = (f: Figures) => number | null | undefined;
export const successRate: Measure = (f) => f.success_rate;
export const durationP50: Measure = (f) => f.duration_p50_s;

/** A line per group (the `limit` with most runs: the API sends them most runs first), a value per day. */
export function seriesOf(groups: readonly AnalyticsGroup[], days: readonly string[], pick: Measure, groupBy: GroupBy, limit = MAX_SERIES): Series[] {
  const index = new Map(days.map((d, i) => [d, i]));
  return groups.slice(0, limit).map((group) => {
    const values: (number | null)[] = days.map(() => null);
    for (const day of group.days) {
      const i = index.get(day.day);
      const value = pick(day);
      if (i !== undefined && value != null && Number.isFinite(value)) values[i] = value;
    }
    return { key: group.key, label: groupName(group, groupBy), values, overall: pick(group) ?? null };
  });
}

/** The runs of consecutive days with a value: each a line; a day without one is a gap. */
export function segments(values: readonly (number | null)[]): { start: number; values: number[] }[] {
  const out: { start: number; values: number[] }[] = [];
  let current: { start: number; values: number[] } | null = null;
  values.forEach((v, i) => {
    if (v == null) {
      current = null;
      return;
    }
    if (!current) {
      current = { start: i, values: [] };
      out.push(current);
    }
    current.values.push(v);
  });
  return out;
}

/** An SVG path through the points, lifted over each gap (a lone point draws nothing: its marker shows it). */
export function linePath(points: readonly ({ x: number; y: number } | null)[]): string {
  const parts: string[] = [];
  let run: { x: number; y: number }[] = [];
  const flush = () => {
    if (run.length > 1) parts.push(run.map((p, k) => `${k === 0 ? "M" : "L"}${round(p.x)},${round(p.y)}`).join(" "));
    run = [];
  };
  for (const p of points) {
    if (p) run.push(p);
    else flush();
  }
  flush();
  return parts.join(" ");
}

const round = (n: number) => Math.round(n * 10) / 10;

// Tick steps for durations, in seconds: whole units people count in.
const SECOND_STEPS = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800];

/** Ticks from 0 to at least `max` in a whole step, about `count` of them ([0, 1] when there is nothing). */
export function durationTicks(max: number, count = 4): number[] {
  if (!(max > 0)) return [0, 1];
  const step = SECOND_STEPS.find((s) => s * count >= max) ?? Math.ceil(max / count / 86400) * 86400;
  const top = Math.ceil(max / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let v = 0; v <= top + step / 2; v += step) ticks.push(Math.round(v * 10) / 10);
  return ticks;
}

export const RATE_TICKS = [0, 0.25, 0.5, 0.75, 1];

/** Which days get a label on the x axis: at most `most`, evenly spaced, always today (the last). */
export function dayTicks(count: number, most: number): number[] {
  if (count <= 0) return [];
  const step = Math.max(1, Math.ceil(count / Math.max(1, most)));
  const out: number[] = [];
  for (let i = count - 1; i >= 0; i -= step) out.unshift(i);
  return out;
}

/**
 * A chart's accessible name: what it shows, over which days, and each line in a few words, e.g.
 * "Success rate by day, Nov 30 – Dec 6, 2026, 2 job types: Model training 93.4% overall, lowest 80%
 * on Dec 3; Pipeline 100% overall, lowest 100% on Dec 6."
 */
export function chartSummary(opts: {
  title: string;
  days: readonly string[];
  series: readonly Series[];
  format: (v: number) => string;
  extreme: "lowest" | "highest";
  plural: string;
  total: number; // groups in the window (more than the lines when capped)
}): string {
  const { title, days, series, format, extreme, plural, total } = opts;
  const first = days[0];
  const last = days[days.length - 1];
  const range = first && last ? formatRange(first, last) : "";
  const count = total > series.length ? `the top ${series.length} of ${total} ${plural} by runs` : `${series.length} ${series.length === 1 ? plural.replace(/s$/, "") : plural}`;
  const lines = series.map((s) => {
    let at = -1;
    s.values.forEach((v, i) => {
      if (v == null) return;
      const best = at < 0 ? null : s.values[at];
      if (best == null || (extreme === "lowest" ? v < best : v > best)) at = i;
    });
    const value = at >= 0 ? s.values[at] : null;
    const day = days[at];
    if (value == null || day === undefined) return `${s.label}: no data`;
    return `${s.label} ${s.overall == null ? "—" : format(s.overall)} overall, ${extreme} ${format(value)} on ${formatDay(day)}`;
  });
  if (series.length === 0 || series.every((s) => s.values.every((v) => v == null))) return `${title}, ${range}: no data.`;
  return `${title}, ${range}, ${count}: ${lines.join("; ")}.`;
}

// Rankings -----------------------------------------------------------------------------------

const byName = (a: AnalyticsGroup, b: AnalyticsGroup) => a.name.localeCompare(b.name) || a.key.localeCompare(b.key);

/** The groups whose runs took longest (p95 of duration), slowest first; groups with no started run left out. */
export function slowest(groups: readonly AnalyticsGroup[], limit = MAX_ROWS): AnalyticsGroup[] {
  return groups
    .filter((g) => g.duration_p95_s != null)
    .sort((a, b) => (b.duration_p95_s ?? 0) - (a.duration_p95_s ?? 0) || b.runs - a.runs || byName(a, b))
    .slice(0, limit);
}

/** The groups with failures (failed + timed out), most first, then the lowest success rate. */
export function mostFailing(groups: readonly AnalyticsGroup[], limit = MAX_ROWS): AnalyticsGroup[] {
  return groups
    .filter((g) => failures(g) > 0)
    .sort((a, b) => failures(b) - failures(a) || (a.success_rate ?? 1) - (b.success_rate ?? 1) || byName(a, b))
    .slice(0, limit);
}
