// A pipeline run's steps as a graph: columns by depth, boxes, arrows. Pure (no React, no DOM) so
// that any shape of graph, even one the API should never send, is tested without a browser.

import type { RunIf, StepState } from "../api/types";

/** What the layout needs of a step: its key and what it depends on. */
export interface GraphStep {
  key: string;
  depends_on: readonly string[];
}

export interface Box {
  key: string;
  /** Its place in the pipeline's order (the API's order). */
  index: number;
  /** The longest path from a root: roots are 0. */
  depth: number;
  /** Its place in its column, top first. */
  row: number;
  x: number;
  y: number;
}

export interface Arrow {
  from: string;
  to: string;
  /** An SVG path from the right edge of `from` to the left edge of `to`. */
  path: string;
}

export interface Layout {
  boxes: Box[];
  arrows: Arrow[];
  width: number;
  height: number;
  columns: number;
  /** Dependencies that name no step in the list: drawn nowhere, listed here. */
  missing: { step: string; dependency: string }[];
}

export interface Sizes {
  boxWidth: number;
  boxHeight: number;
  gapX: number;
  gapY: number;
  pad: number;
}

export const SIZES: Sizes = { boxWidth: 168, boxHeight: 58, gapX: 44, gapY: 22, pad: 12 };

/**
 * Depth of every step: 0 for a step with no (known) dependency, else one more than its deepest
 * dependency. A dependency on a step that is not in the list is ignored; so is the edge that would
 * close a cycle (the API refuses both, but a view must not crash or loop on them). The first of
 * two steps with the same key wins.
 */
export function depths(steps: readonly GraphStep[]): Map<string, number> {
  const byKey = new Map<string, GraphStep>();
  for (const step of steps) if (!byKey.has(step.key)) byKey.set(step.key, step);
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  // Iterative depth-first search: a chain of any length cannot overflow the stack.
  for (const start of byKey.keys()) {
    if (depth.has(start)) continue;
    const stack: { key: string; next: number }[] = [{ key: start, next: 0 }];
    visiting.add(start);
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as { key: string; next: number };
      const deps = byKey.get(top.key)?.depends_on ?? [];
      if (top.next < deps.length) {
        const dep = deps[top.next++] as string;
        if (byKey.has(dep) && !depth.has(dep) && !visiting.has(dep)) {
          visiting.add(dep);
          stack.push({ key: dep, next: 0 });
        }
        continue;
      }
      const known = deps.filter((d) => depth.has(d)).map((d) => depth.get(d) as number);
      depth.set(top.key, known.length > 0 ? Math.max(...known) + 1 : 0);
      visiting.delete(top.key);
      stack.pop();
    }
  }
  return depth;
}

/**
 * Boxes in columns by depth, left to right. In a column, a box sits near the average row of its
 * dependencies (fewer crossings), then in the pipeline's order; shorter columns are centred.
 */
export function layout(steps: readonly GraphStep[], sizes: Sizes = SIZES): Layout {
  const depth = depths(steps);
  const seen = new Set<string>();
  const unique = steps.filter((s) => (seen.has(s.key) ? false : (seen.add(s.key), true)));
  const columns: GraphStep[][] = [];
  unique.forEach((step) => {
    const d = depth.get(step.key) ?? 0;
    (columns[d] ??= []).push(step);
  });
  const index = new Map(unique.map((s, i) => [s.key, i]));
  const row = new Map<string, number>();
  const filled = Array.from(columns, (c) => c ?? []);
  filled.forEach((column, d) => {
    const place = (step: GraphStep) => {
      const rows = step.depends_on.filter((k) => row.has(k) && (depth.get(k) ?? 0) < d).map((k) => row.get(k) as number);
      return rows.length > 0 ? rows.reduce((a, b) => a + b, 0) / rows.length : Infinity;
    };
    const order = d === 0 ? column : [...column].sort((a, b) => place(a) - place(b) || (index.get(a.key) ?? 0) - (index.get(b.key) ?? 0));
    order.forEach((step, r) => row.set(step.key, r));
    column.splice(0, column.length, ...order);
  });
  const tallest = Math.max(1, ...filled.map((c) => c.length));
  const stepY = sizes.boxHeight + sizes.gapY;
  const stepX = sizes.boxWidth + sizes.gapX;
  const boxes: Box[] = [];
  filled.forEach((column, d) => {
    const offset = ((tallest - column.length) * stepY) / 2;
    column.forEach((step, r) => {
      boxes.push({
        key: step.key,
        index: index.get(step.key) ?? 0,
        depth: d,
        row: r,
        x: sizes.pad + d * stepX,
        y: sizes.pad + offset + r * stepY,
      });
    });
  });
  boxes.sort((a, b) => a.index - b.index);
  const at = new Map(boxes.map((b) => [b.key, b]));
  const arrows: Arrow[] = [];
  const missing: Layout["missing"] = [];
  for (const step of unique) {
    const to = at.get(step.key) as Box;
    for (const dep of new Set(step.depends_on)) {
      const from = at.get(dep);
      if (!from) {
        missing.push({ step: step.key, dependency: dep });
        continue;
      }
      if (from.depth >= to.depth) continue; // the edge that would close a cycle
      arrows.push({ from: dep, to: step.key, path: curve(from, to, sizes) });
    }
  }
  const width = filled.length === 0 ? 0 : sizes.pad * 2 + filled.length * stepX - sizes.gapX;
  const height = filled.length === 0 ? 0 : sizes.pad * 2 + tallest * stepY - sizes.gapY;
  return { boxes, arrows, width, height, columns: filled.length, missing };
}

function curve(from: Box, to: Box, sizes: Sizes): string {
  const x1 = from.x + sizes.boxWidth;
  const y1 = from.y + sizes.boxHeight / 2;
  const x2 = to.x - 2; // the arrowhead ends on the box's edge
  const y2 = to.y + sizes.boxHeight / 2;
  const bend = Math.max(16, (x2 - x1) / 2);
  const n = (v: number) => Math.round(v * 10) / 10;
  return `M${n(x1)},${n(y1)} C${n(x1 + bend)},${n(y1)} ${n(x2 - bend)},${n(y2)} ${n(x2)},${n(y2)}`;
}

// ---- words --------------------------------------------------------------------------------

/** Step states in the order a summary lists them, and how it says each. */
const STATE_WORDS: [StepState, string][] = [
  ["SUCCEEDED", "succeeded"],
  ["FAILED", "failed"],
  ["TIMED_OUT", "timed out"],
  ["CANCELLED", "cancelled"],
  ["UPSTREAM_FAILED", "upstream failed"],
  ["EXCLUDED", "excluded"],
  ["ACTIVE", "running"],
  ["PENDING", "pending"],
];

/** "3 succeeded, 1 failed, 1 upstream failed" (states with no step left out; "no steps" for none). */
export function stepsSummary(steps: readonly { state: StepState }[]): string {
  const parts = STATE_WORDS.map(([state, words]) => [steps.filter((s) => s.state === state).length, words] as const)
    .filter(([n]) => n > 0)
    .map(([n, words]) => `${n} ${words}`);
  return parts.length > 0 ? parts.join(", ") : "no steps";
}

/** A step that will never run: its run_if was not met, or the pipeline ended before it started. */
export function neverRan(step: { state: StepState; started_at?: string | null }): boolean {
  return step.state === "UPSTREAM_FAILED" || step.state === "EXCLUDED" || (step.state === "CANCELLED" && !step.started_at);
}

/** Why a step did not run, in words (empty for one that ran or may still run). */
export function notRunReason(step: { state: StepState; started_at?: string | null }): string {
  if (step.state === "UPSTREAM_FAILED") return "not run: its run if was not met";
  if (step.state === "EXCLUDED") return "not run: nothing to handle (counts as success)";
  if (step.state === "CANCELLED" && !step.started_at) return "not run: cancelled before it started";
  return "";
}

/** A short tag for a run_if that is not the default (ALL_SUCCESS): drawn on the step's box. */
export function runIfTag(runIf: RunIf): string {
  switch (runIf) {
    case "ALL_SUCCESS":
      return "";
    case "AT_LEAST_ONE_SUCCESS":
      return "≥1 succeeded";
    case "NONE_FAILED":
      return "none failed";
    case "ALL_DONE":
      return "all done";
    case "AT_LEAST_ONE_FAILED":
      return "≥1 failed";
    case "ALL_FAILED":
      return "all failed";
  }
}

/** Whole seconds, as "45 s", "4 min 5 s", "1 h 2 min" (like `duration` in time.ts). */
function seconds(total: number): string {
  const s = Math.max(0, Math.round(total));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/**
 * How long a step took ("4 min 5 s"), "running for 12 s" while it runs, "not run" for one that
 * never ran, "" for one still waiting.
 */
export function stepDuration(step: { state: StepState; started_at: string | null; ended_at: string | null }, now: number = Date.now()): string {
  if (neverRan(step)) return "not run";
  if (!step.started_at) return "";
  const from = Date.parse(step.started_at);
  if (Number.isNaN(from)) return "";
  if (step.ended_at) {
    const to = Date.parse(step.ended_at);
    return Number.isNaN(to) ? "" : seconds((to - from) / 1000);
  }
  return step.state === "ACTIVE" ? `running for ${seconds((now - from) / 1000)}` : "";
}
