import { describe, expect, it } from "vitest";

import { depths, type GraphStep, layout, neverRan, runIfTag, SIZES, stepDuration, stepsSummary } from "./pipeline";

const step = (key: string, ...depends_on: string[]): GraphStep => ({ key, depends_on });
const byKey = (l: ReturnType<typeof layout>) => Object.fromEntries(l.boxes.map((b) => [b.key, b]));
const overlap = (l: ReturnType<typeof layout>) => {
  const spots = l.boxes.map((b) => `${b.x},${b.y}`);
  return spots.length - new Set(spots).size;
};

describe("the pipeline layout", () => {
  it("puts a chain in one row of consecutive columns, with an arrow per link", () => {
    const l = layout([step("extract"), step("train", "extract"), step("publish", "train")]);
    expect(l.boxes.map((b) => [b.key, b.depth, b.row])).toEqual([
      ["extract", 0, 0],
      ["train", 1, 0],
      ["publish", 2, 0],
    ]);
    expect(l.columns).toBe(3);
    expect(l.arrows.map((a) => `${a.from}->${a.to}`)).toEqual(["extract->train", "train->publish"]);
    const b = byKey(l);
    expect(b.train?.x).toBe(SIZES.pad + SIZES.boxWidth + SIZES.gapX);
    expect(new Set(l.boxes.map((x) => x.y)).size).toBe(1);
    expect(l.width).toBe(SIZES.pad * 2 + 3 * SIZES.boxWidth + 2 * SIZES.gapX);
    expect(l.height).toBe(SIZES.pad * 2 + SIZES.boxHeight);
    expect(l.missing).toEqual([]);
  });

  it("lays a diamond out in three columns, the middle two stacked, the ends centred between them", () => {
    const l = layout([step("a"), step("b", "a"), step("c", "a"), step("d", "b", "c")]);
    const b = byKey(l);
    expect([b.a?.depth, b.b?.depth, b.c?.depth, b.d?.depth]).toEqual([0, 1, 1, 2]);
    expect([b.b?.row, b.c?.row]).toEqual([0, 1]);
    expect(b.b?.x).toBe(b.c?.x);
    expect((b.c?.y ?? 0) - (b.b?.y ?? 0)).toBe(SIZES.boxHeight + SIZES.gapY);
    // a and d sit half way between b and c
    expect(b.a?.y).toBe(((b.b?.y ?? 0) + (b.c?.y ?? 0)) / 2);
    expect(b.d?.y).toBe(b.a?.y);
    expect(l.arrows).toHaveLength(4);
    // every arrow goes from the right edge of its dependency to the left of its step
    for (const arrow of l.arrows) {
      const from = b[arrow.from];
      const to = b[arrow.to];
      expect(arrow.path.startsWith(`M${(from?.x ?? 0) + SIZES.boxWidth},`)).toBe(true);
      expect(arrow.path.endsWith(`${(to?.y ?? 0) + SIZES.boxHeight / 2}`)).toBe(true);
    }
  });

  it("uses the longest path for depth: a step after a chain and a root goes after the chain", () => {
    const d = depths([step("a"), step("b", "a"), step("c", "b"), step("d", "a", "c")]);
    expect(Object.fromEntries(d)).toEqual({ a: 0, b: 1, c: 2, d: 3 });
  });

  it("fans 50 steps out of one root into one column of 50, none on top of another", () => {
    const steps = [step("root"), ...Array.from({ length: 50 }, (_, i) => step(`s${i}`, "root"))];
    const l = layout(steps);
    expect(l.columns).toBe(2);
    expect(l.boxes.filter((b) => b.depth === 1)).toHaveLength(50);
    expect(overlap(l)).toBe(0);
    expect(l.arrows).toHaveLength(50);
    expect(l.height).toBe(SIZES.pad * 2 + 50 * (SIZES.boxHeight + SIZES.gapY) - SIZES.gapY);
    // the pipeline's order is kept down the column
    const column = l.boxes.filter((b) => b.depth === 1).sort((a, b) => a.row - b.row);
    expect(column.map((b) => b.key).slice(0, 3)).toEqual(["s0", "s1", "s2"]);
  });

  it("does not crash on a dependency missing from the list: it is listed, not drawn", () => {
    const l = layout([step("a"), step("b", "a", "gone")]);
    expect(l.boxes.map((b) => [b.key, b.depth])).toEqual([
      ["a", 0],
      ["b", 1],
    ]);
    expect(l.arrows.map((a) => `${a.from}->${a.to}`)).toEqual(["a->b"]);
    expect(l.missing).toEqual([{ step: "b", dependency: "gone" }]);
    // only missing dependencies: a root
    expect(byKey(layout([step("lonely", "nowhere")])).lonely?.depth).toBe(0);
  });

  it("survives what the API refuses: a cycle, a self-dependency, a duplicate key, no steps", () => {
    const cycle = layout([step("a", "b"), step("b", "a"), step("c", "c")]);
    expect(cycle.boxes).toHaveLength(3);
    expect(overlap(cycle)).toBe(0);
    expect(cycle.arrows.length).toBeLessThanOrEqual(1);
    expect(layout([step("a"), step("a", "a")]).boxes).toHaveLength(1);
    expect(layout([])).toMatchObject({ boxes: [], arrows: [], width: 0, height: 0, columns: 0 });
  });

  it("orders a column by where its dependencies are, to cross fewer arrows", () => {
    // x depends on the lower root, y on the upper one: y goes first
    const l = layout([step("top"), step("bottom"), step("x", "bottom"), step("y", "top")]);
    const b = byKey(l);
    expect([b.y?.row, b.x?.row]).toEqual([0, 1]);
  });

  it("lays out a chain of 100 without recursion trouble", () => {
    const steps = Array.from({ length: 100 }, (_, i) => step(`s${i}`, ...(i > 0 ? [`s${i - 1}`] : [])));
    expect(depths(steps).get("s99")).toBe(99);
  });
});

describe("pipeline steps in words", () => {
  it("sums up the states in a fixed order, leaving out those with no step", () => {
    const states = ["SUCCEEDED", "FAILED", "SUCCEEDED", "UPSTREAM_FAILED", "SUCCEEDED"] as const;
    expect(stepsSummary(states.map((state) => ({ state })))).toBe("3 succeeded, 1 failed, 1 upstream failed");
    expect(stepsSummary([{ state: "ACTIVE" }, { state: "PENDING" }, { state: "PENDING" }])).toBe("1 running, 2 pending");
    expect(stepsSummary([])).toBe("no steps");
  });

  it("says how long a step took, how long it has run, or that it never ran", () => {
    const at = (s: number) => new Date(Date.UTC(2026, 5, 1, 12, 0, s)).toISOString();
    expect(stepDuration({ state: "SUCCEEDED", started_at: at(0), ended_at: at(45) })).toBe("45 s");
    expect(stepDuration({ state: "FAILED", started_at: at(0), ended_at: new Date(Date.UTC(2026, 5, 1, 12, 4, 5)).toISOString() })).toBe("4 min 5 s");
    expect(stepDuration({ state: "ACTIVE", started_at: at(0), ended_at: null }, Date.parse(at(12)))).toBe("running for 12 s");
    expect(stepDuration({ state: "PENDING", started_at: null, ended_at: null })).toBe("");
    expect(stepDuration({ state: "UPSTREAM_FAILED", started_at: null, ended_at: at(3) })).toBe("not run");
    expect(stepDuration({ state: "CANCELLED", started_at: null, ended_at: at(3) })).toBe("not run");
    expect(neverRan({ state: "CANCELLED", started_at: at(0) })).toBe(false);
    expect(neverRan({ state: "EXCLUDED" })).toBe(true);
  });

  it("tags only a run_if that is not the default", () => {
    expect(runIfTag("ALL_SUCCESS")).toBe("");
    expect(runIfTag("ALL_DONE")).toBe("all done");
    expect(runIfTag("AT_LEAST_ONE_FAILED")).toBe("≥1 failed");
  });
});
