// A batch's grid as the "Run a batch" form builds it from a template's parameters, and what the
// API says of a batch (its points, counts and rounds) as the batch page shows it.
import type { components } from "../api/schema";
import type { FieldErrors } from "./form";
import {
  initialInputs,
  PARAM_KEY,
  type ParameterInputs,
  parameterValues,
  type Scalar,
  type Template,
  type TemplateParameter,
  valueText,
} from "./templates";

type S = components["schemas"];
export type Batch = S["BatchOut"];
export type BatchPoint = S["BatchPointOut"];
export type BatchRound = S["BatchRoundOut"];
export type BatchCounts = S["BatchCounts"];
export type PointState = BatchPoint["state"];
export type ExecutionMode = Batch["execution_mode"];

export const MAX_POINTS = 1000;
export const MAX_PARALLEL = 100;

/** A bool parameter's sweep: both values, or one of them. */
export type BoolSweep = "both" | "true" | "false";

/** One parameter in the grid builder: a fixed value (as the job form has it), or a sweep of values. */
export interface ParameterDraft {
  sweep: boolean;
  /** The fixed value's input: text (string, int, float), checkbox (bool), option index or "" (enum). */
  fixed: string | boolean;
  /** string, int, float: the values, separated by commas. */
  list: string;
  /** int, float: the from/to/step helper that fills `list`. */
  from: string;
  to: string;
  step: string;
  /** enum: which options (by index) are swept. */
  options: boolean[];
  /** bool: which values are swept. */
  bools: BoolSweep;
}

export type GridDraft = Record<string, ParameterDraft>;

export interface BatchSettings {
  name: string;
  mode: ExecutionMode;
  maxParallel: string;
}

/** The grid as the form opens: every parameter fixed at its default; a sweep would start from it. */
export function initialGrid(parameters: TemplateParameter[]): GridDraft {
  const inputs = initialInputs(parameters);
  const out: GridDraft = {};
  for (const p of parameters) {
    const fixed = inputs[p.name] ?? "";
    const given = p.default ?? null;
    out[p.name] = {
      sweep: false,
      fixed,
      list: p.type === "int" || p.type === "float" || p.type === "string" ? valueText(given) : "",
      from: "",
      to: "",
      step: "",
      options: (p.options ?? []).map((_, i) => typeof fixed === "string" && fixed === String(i)),
      bools: "both",
    };
  }
  return out;
}

/** The tokens of a comma-separated list, trimmed, empty ones dropped. */
export function listTokens(text: string): string[] {
  return text
    .split(",")
    .map((t) => t.trim())
    .filter((t) => t !== "");
}

/**
 * A swept parameter's values, typed as the API takes them: a number for int and float (what does
 * not convert goes as typed, for the server to name; `checkGrid` names a non-number first), the
 * options ticked for enum, true and/or false for bool, the texts for string.
 */
export function sweepValues(p: TemplateParameter, draft: ParameterDraft): Scalar[] {
  switch (p.type) {
    case "bool":
      return draft.bools === "both" ? [true, false] : [draft.bools === "true"];
    case "enum":
      return (p.options ?? []).filter((_, i) => draft.options[i] === true);
    case "int":
    case "float":
      return listTokens(draft.list).map((t) => {
        const n = Number(t);
        return Number.isFinite(n) ? n : t;
      });
    default:
      return listTokens(draft.list);
  }
}

/** How many values a parameter contributes to the grid: 1 when fixed. */
export function valueCount(p: TemplateParameter, draft: ParameterDraft | undefined): number {
  return draft?.sweep ? sweepValues(p, draft).length : 1;
}

/** The grid's size: the product of each swept parameter's count (1 with nothing swept). */
export function pointCount(parameters: TemplateParameter[], grid: GridDraft): number {
  return parameters.reduce((n, p) => n * valueCount(p, grid[p.name]), 1);
}

/** "2 × 3 = 6 points", "1 point (nothing swept)". */
export function countInWords(parameters: TemplateParameter[], grid: GridDraft): string {
  const swept = parameters.filter((p) => grid[p.name]?.sweep);
  const total = pointCount(parameters, grid);
  const points = `${total.toLocaleString("en-US")} ${total === 1 ? "point" : "points"}`;
  if (swept.length === 0) return `${points} (nothing swept)`;
  if (swept.length === 1) return points;
  return `${swept.map((p) => valueCount(p, grid[p.name])).join(" × ")} = ${points}`;
}

const decimals = (text: string) => {
  const m = /\.(\d+)$/.exec(text.trim()) ?? /e-(\d+)$/i.exec(text.trim());
  return m ? (m[0].startsWith(".") ? (m[1] ?? "").length : Number(m[1])) : 0;
};

/**
 * The values from `from` to `to` (both included, when on the way) every `step`: what the helper
 * writes into the list. An error in words when it cannot (not numbers, a step of 0 or the wrong
 * way, an int's fraction, more than 1,000 values).
 */
export function rangeValues(type: "int" | "float", from: string, to: string, step: string): number[] | string {
  const [a, b, s] = [from, to, step].map((t) => Number(t.trim()));
  if ([from, to, step].some((t) => t.trim() === "") || !Number.isFinite(a) || !Number.isFinite(b) || !Number.isFinite(s))
    return "From, to and step must be numbers.";
  const [start, end, by] = [a as number, b as number, s as number];
  if (type === "int" && ![start, end, by].every(Number.isInteger)) return "From, to and step must be whole numbers.";
  if (by === 0 || (end - start) / by < 0) return start === end ? [start] : "The step must go from the start toward the end.";
  const places = Math.max(decimals(from), decimals(to), decimals(step));
  const count = Math.floor((end - start) / by + 1e-9) + 1;
  if (count > MAX_POINTS) return `That is ${count.toLocaleString("en-US")} values; a batch has at most ${MAX_POINTS.toLocaleString("en-US")} points.`;
  return Array.from({ length: count }, (_, i) => Number((start + i * by).toFixed(Math.min(places, 15))));
}

/** What the browser can tell before asking: a sweep without values, a number that is not one, too many points, max parallel. */
export function checkGrid(parameters: TemplateParameter[], grid: GridDraft, settings: BatchSettings): FieldErrors {
  const errors: FieldErrors = {};
  for (const p of parameters) {
    const draft = grid[p.name];
    if (!draft) continue;
    const key = `${PARAM_KEY}${p.name}`;
    if (!draft.sweep) {
      if ((p.type === "int" || p.type === "float") && typeof draft.fixed === "string" && draft.fixed.trim() !== "")
        if (!Number.isFinite(Number(draft.fixed.trim()))) errors[key] = "must be a number";
      continue;
    }
    const values = sweepValues(p, draft);
    if (values.length === 0) {
      errors[key] = p.type === "enum" ? "Tick at least one option to sweep." : "Give at least one value to sweep.";
      continue;
    }
    const bad = values.filter((v) => typeof v === "string" && (p.type === "int" || p.type === "float"));
    if (bad.length > 0) errors[key] = `${bad.map(String).join(", ")}: ${bad.length === 1 ? "is not a number" : "are not numbers"}`;
  }
  const total = pointCount(parameters, grid);
  if (total > MAX_POINTS)
    errors.points = `The grid has ${total.toLocaleString("en-US")} points; a batch has at most ${MAX_POINTS.toLocaleString("en-US")}. Sweep fewer values.`;
  if (settings.mode === "parallel") {
    const n = Number(settings.maxParallel.trim());
    if (!Number.isInteger(n) || n < 1 || n > MAX_PARALLEL) errors.maxParallel = `A whole number from 1 to ${MAX_PARALLEL}.`;
  }
  return errors;
}

export interface BatchBody {
  template: string;
  version: number;
  name?: string;
  parameters: Record<string, Scalar>;
  grid?: Record<string, Scalar[]>;
  runs?: Record<string, Scalar>[];
  execution_mode: ExecutionMode;
  max_parallel?: number;
}

/**
 * `POST /api/batches`'s body: the fixed values as `parameters` (an empty input left out, so the
 * default applies), the swept ones as `grid`; with nothing swept, one point (`runs: [{}]`).
 */
export function batchBody(template: Template, grid: GridDraft, settings: BatchSettings): BatchBody {
  const parameters = template.parameters ?? [];
  const fixed = parameters.filter((p) => !grid[p.name]?.sweep);
  const inputs: ParameterInputs = Object.fromEntries(fixed.map((p) => [p.name, grid[p.name]?.fixed ?? ""]));
  const swept = parameters.filter((p) => grid[p.name]?.sweep);
  const body: BatchBody = {
    template: template.name,
    version: template.version,
    parameters: parameterValues(fixed, inputs),
    execution_mode: settings.mode,
  };
  if (settings.name.trim()) body.name = settings.name.trim();
  if (swept.length > 0)
    body.grid = Object.fromEntries(swept.map((p) => [p.name, sweepValues(p, grid[p.name] as ParameterDraft)]));
  else body.runs = [{}];
  if (settings.mode === "parallel") body.max_parallel = Number(settings.maxParallel.trim());
  return body;
}

const OWN: Record<string, string> = { name: "name", max_parallel: "maxParallel", execution_mode: "mode" };

/**
 * The server's 422 `errors` at the form's fields: `grid.<name>.<j>` (the j-th value sent, named),
 * `grid.<name>`, `parameters.<name>` and `runs.<i>.<name>` at that parameter's (`param:<name>`);
 * the name and max parallel at theirs; the rest (and a parameter not shown) under `form`.
 */
export function batchFieldErrors(errors: Record<string, string>, sent: BatchBody, shown: Set<string>): FieldErrors {
  const out: FieldErrors = {};
  const add = (key: string, message: string) => {
    out[key] = out[key] ? `${out[key]}; ${message}` : message;
  };
  for (const [path, message] of Object.entries(errors)) {
    const parts = path.split(".");
    let name: string | undefined;
    let text = message;
    if (parts[0] === "grid" && parts.length >= 2) {
      name = parts[1];
      const j = parts.length === 3 ? Number(parts[2]) : NaN;
      const value = name !== undefined && Number.isInteger(j) ? sent.grid?.[name]?.[j] : undefined;
      if (value !== undefined) text = `${valueText(value)}: ${message}`;
      else if (Number.isInteger(j)) text = `value ${j + 1}: ${message}`;
    } else if (parts[0] === "parameters" && parts.length === 2) name = parts[1];
    else if (parts[0] === "runs" && parts.length === 3) name = parts[2];
    if (name !== undefined) {
      const key = `${PARAM_KEY}${name}`;
      if (shown.has(key)) add(key, text);
      else add("form", `${name}: ${text}`);
      continue;
    }
    const own = OWN[path];
    if (own && shown.has(own)) add(own, message);
    else add("form", path ? `${path}: ${message}` : message);
  }
  return out;
}

// -- the batch page ---------------------------------------------------------------------------------

/** The point states in the order the page counts them. */
export const POINT_STATES: PointState[] = ["pending", "queued", "running", "succeeded", "failed", "cancelled", "skipped"];

/** How many points have ended (succeeded, failed, cancelled or skipped). */
export function endedCount(counts: BatchCounts): number {
  return counts.succeeded + counts.failed + counts.cancelled + counts.skipped;
}

/** The parameters' names as the points table's columns, in the order the points give them. */
export function pointColumns(points: BatchPoint[]): string[] {
  const seen = new Set<string>();
  for (const p of points) for (const n of Object.keys(p.parameters)) seen.add(n);
  return [...seen];
}

/**
 * The parameters that vary between points (the sweep) first, then those every point shares: the
 * table shows the varying ones as columns, the shared ones once above it.
 */
export function splitColumns(points: BatchPoint[], columns: string[]): { varying: string[]; shared: string[] } {
  const varying: string[] = [];
  const shared: string[] = [];
  for (const c of columns) {
    const first = points[0]?.parameters[c];
    const same = points.every((p) => p.parameters[c] === first);
    (same && points.length > 1 ? shared : varying).push(c);
  }
  return { varying, shared };
}

/** Whether "Retry failed" can do anything: the newest round ended and some point failed. */
export const canRetryFailed = (batch: Pick<Batch, "counts">, ended: boolean) => ended && batch.counts.failed > 0;
