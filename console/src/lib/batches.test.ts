import { describe, expect, it } from "vitest";

import {
  type BatchPoint,
  batchBody,
  batchFieldErrors,
  type BatchSettings,
  canRetryFailed,
  checkGrid,
  countInWords,
  endedCount,
  type GridDraft,
  initialGrid,
  listTokens,
  type ParameterDraft,
  pointColumns,
  pointCount,
  rangeValues,
  splitColumns,
  sweepValues,
} from "./batches";
import { PARAMS, param } from "../test/templates";
import type { Template, TemplateParameter } from "./templates";

const TEMPLATE = { name: "train-model", version: 3, parameters: PARAMS } as unknown as Template;
const SETTINGS: BatchSettings = { name: "", mode: "parallel", maxParallel: "4" };
const byName = (name: string) => PARAMS.find((p) => p.name === name) as TemplateParameter;

/** The initial grid with some parameters changed. */
function gridWith(changes: Record<string, Partial<ParameterDraft>>): GridDraft {
  const grid = initialGrid(PARAMS);
  for (const [name, change] of Object.entries(changes)) grid[name] = { ...(grid[name] as ParameterDraft), ...change };
  return grid;
}

describe("the grid builder", () => {
  it("opens with every parameter fixed at its default, a sweep ready to start from it", () => {
    const grid = initialGrid(PARAMS);
    expect(Object.values(grid).every((d) => !d.sweep)).toBe(true);
    expect(grid.market).toMatchObject({ fixed: "", options: [false, false, false], bools: "both" });
    expect(grid.learning_rate).toMatchObject({ fixed: "0.001", list: "0.001" });
    expect(grid.epochs).toMatchObject({ fixed: "10", list: "10" });
    expect(grid.full_refresh).toMatchObject({ fixed: false });
    const chosen = initialGrid([param({ name: "m", type: "enum", options: ["a", "b"], default: "b" })]);
    expect(chosen.m?.options).toEqual([false, true]);
  });

  it("parses each type's sweep: numbers typed, options ticked, both booleans, texts", () => {
    const d = initialGrid(PARAMS);
    expect(sweepValues(byName("learning_rate"), { ...d.learning_rate!, list: " 0.1, 0.01 ,,1e-3 " })).toEqual([0.1, 0.01, 0.001]);
    expect(sweepValues(byName("epochs"), { ...d.epochs!, list: "5, 10, 2.5" })).toEqual([5, 10, 2.5]); // 2.5: the server says "must be an integer"
    expect(sweepValues(byName("learning_rate"), { ...d.learning_rate!, list: "0.1, abc" })).toEqual([0.1, "abc"]);
    expect(sweepValues(byName("market"), { ...d.market!, options: [true, false, true] })).toEqual(["de", "uk"]);
    expect(sweepValues(byName("full_refresh"), { ...d.full_refresh!, bools: "both" })).toEqual([true, false]);
    expect(sweepValues(byName("full_refresh"), { ...d.full_refresh!, bools: "false" })).toEqual([false]);
    expect(sweepValues(byName("note"), { ...d.note!, list: "a b, c" })).toEqual(["a b", "c"]);
    expect(listTokens(" , ")).toEqual([]);
  });

  it("counts the points as the product of the swept parameters' values", () => {
    expect(pointCount(PARAMS, initialGrid(PARAMS))).toBe(1);
    expect(countInWords(PARAMS, initialGrid(PARAMS))).toBe("1 point (nothing swept)");
    const grid = gridWith({
      learning_rate: { sweep: true, list: "0.1, 0.01" },
      epochs: { sweep: true, list: "5, 10, 20" },
    });
    expect(pointCount(PARAMS, grid)).toBe(6);
    expect(countInWords(PARAMS, grid)).toBe("2 × 3 = 6 points");
    grid.full_refresh = { ...(grid.full_refresh as ParameterDraft), sweep: true };
    expect(countInWords(PARAMS, grid)).toBe("2 × 3 × 2 = 12 points");
    expect(countInWords(PARAMS, gridWith({ epochs: { sweep: true, list: "1,2,3" } }))).toBe("3 points");
    expect(pointCount(PARAMS, gridWith({ epochs: { sweep: true, list: "" } }))).toBe(0);
  });

  it("fills a number sweep from a range, steps included, without float noise", () => {
    expect(rangeValues("int", "1", "10", "3")).toEqual([1, 4, 7, 10]);
    expect(rangeValues("int", "10", "1", "-4")).toEqual([10, 6, 2]);
    expect(rangeValues("float", "0.1", "0.5", "0.1")).toEqual([0.1, 0.2, 0.3, 0.4, 0.5]);
    expect(rangeValues("float", "0", "1", "0.25")).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(rangeValues("int", "3", "3", "0")).toEqual([3]);
    expect(rangeValues("int", "1", "2", "0.5")).toBe("From, to and step must be whole numbers.");
    expect(rangeValues("int", "1", "5", "-1")).toBe("The step must go from the start toward the end.");
    expect(rangeValues("float", "", "1", "0.1")).toBe("From, to and step must be numbers.");
    expect(rangeValues("int", "1", "5000", "1")).toMatch(/5,000 values; a batch has at most 1,000/);
  });

  it("refuses before asking: no values, a non-number, more than 1,000 points, max parallel out of range", () => {
    expect(checkGrid(PARAMS, initialGrid(PARAMS), SETTINGS)).toEqual({});
    const grid = gridWith({
      market: { sweep: true },
      learning_rate: { sweep: true, list: "0.1, abc, x" },
      epochs: { sweep: true, list: "" },
    });
    expect(checkGrid(PARAMS, grid, { ...SETTINGS, maxParallel: "0" })).toEqual({
      "param:market": "Tick at least one option to sweep.",
      "param:learning_rate": "abc, x: are not numbers",
      "param:epochs": "Give at least one value to sweep.",
      maxParallel: "A whole number from 1 to 100.",
    });
    // sequential: max parallel is not asked
    expect(checkGrid(PARAMS, initialGrid(PARAMS), { ...SETTINGS, mode: "sequential", maxParallel: "" })).toEqual({});
    expect(checkGrid(PARAMS, gridWith({ epochs: { fixed: "ten" } }), SETTINGS)).toEqual({ "param:epochs": "must be a number" });
    const big = gridWith({
      learning_rate: { sweep: true, list: Array.from({ length: 11 }, (_, i) => i).join(",") },
      epochs: { sweep: true, list: Array.from({ length: 100 }, (_, i) => i).join(",") },
    });
    expect(pointCount(PARAMS, big)).toBe(1100);
    expect(checkGrid(PARAMS, big, SETTINGS).points).toBe("The grid has 1,100 points; a batch has at most 1,000. Sweep fewer values.");
    const thousand = gridWith({
      learning_rate: { sweep: true, list: Array.from({ length: 10 }, (_, i) => i).join(",") },
      epochs: { sweep: true, list: Array.from({ length: 100 }, (_, i) => i).join(",") },
    });
    expect(checkGrid(PARAMS, thousand, SETTINGS)).toEqual({});
  });
});

describe("the batch sent", () => {
  it("has the fixed values as parameters and the swept ones as a grid", () => {
    const grid = gridWith({
      market: { fixed: "1" },
      learning_rate: { sweep: true, list: "0.1, 0.01" },
      epochs: { sweep: true, list: "5, 10, 20" },
      full_refresh: { fixed: true },
    });
    expect(batchBody(TEMPLATE, grid, { ...SETTINGS, name: " sweep-1 " })).toEqual({
      template: "train-model",
      version: 3,
      name: "sweep-1",
      parameters: { market: "fr", full_refresh: true },
      grid: { learning_rate: [0.1, 0.01], epochs: [5, 10, 20] },
      execution_mode: "parallel",
      max_parallel: 4,
    });
  });

  it("is one point when nothing is swept, and sequential without max parallel", () => {
    const body = batchBody(TEMPLATE, gridWith({ market: { fixed: "0" } }), { name: "", mode: "sequential", maxParallel: "4" });
    expect(body).toEqual({
      template: "train-model",
      version: 3,
      parameters: { market: "de", learning_rate: 0.001, epochs: 10, full_refresh: false },
      runs: [{}],
      execution_mode: "sequential",
    });
  });

  it("sweeps enums and booleans by their values", () => {
    const grid = gridWith({ market: { sweep: true, options: [true, true, false] }, full_refresh: { sweep: true, bools: "both" } });
    expect(batchBody(TEMPLATE, grid, SETTINGS).grid).toEqual({ market: ["de", "fr"], full_refresh: [true, false] });
  });
});

describe("the server's errors", () => {
  const shown = new Set(["param:market", "param:learning_rate", "param:epochs", "name", "maxParallel"]);
  const sent = batchBody(
    TEMPLATE,
    gridWith({ learning_rate: { sweep: true, list: "0.1, fast" }, epochs: { sweep: true, list: "5, 2.5" } }),
    SETTINGS,
  );

  it("land at each parameter's field, a grid value named by what was sent", () => {
    const errors = batchFieldErrors(
      {
        "grid.learning_rate.1": "must be a number",
        "grid.epochs.1": "must be an integer",
        "grid.epochs.7": "must be an integer",
        "parameters.market": "is required",
        max_parallel: "must be at most 100",
      },
      sent,
      shown,
    );
    expect(errors).toEqual({
      "param:learning_rate": "fast: must be a number",
      "param:epochs": "2.5: must be an integer; value 8: must be an integer",
      "param:market": "is required",
      maxParallel: "must be at most 100",
    });
  });

  it("of a whole grid parameter, or of the one point, land at the parameter too", () => {
    expect(batchFieldErrors({ "grid.epochs": "is not a parameter of template 't'", "runs.0.market": "is required" }, sent, shown)).toEqual({
      "param:epochs": "is not a parameter of template 't'",
      "param:market": "is required",
    });
  });

  it("without a field of their own go to the form's alert, named", () => {
    expect(
      batchFieldErrors({ "grid.depth": "is not a parameter of template 't'", template: "not found", pool: "unknown pool", grid: "too big" }, sent, shown),
    ).toEqual({ form: "depth: is not a parameter of template 't'; template: not found; pool: unknown pool; grid: too big" });
  });
});

describe("a batch's page", () => {
  const point = (n: number, parameters: BatchPoint["parameters"], state: BatchPoint["state"] = "pending"): BatchPoint => ({
    point: n,
    parameters,
    state,
    round: 1,
  });

  it("shows the varying parameters as columns and the shared ones once", () => {
    const points = [
      point(0, { market: "de", lr: 0.1, epochs: 5 }),
      point(1, { market: "de", lr: 0.1, epochs: 10 }),
      point(2, { market: "de", lr: 0.01, epochs: 5 }),
    ];
    expect(pointColumns(points)).toEqual(["market", "lr", "epochs"]);
    expect(splitColumns(points, pointColumns(points))).toEqual({ varying: ["lr", "epochs"], shared: ["market"] });
    expect(splitColumns(points.slice(0, 1), ["market", "lr", "epochs"])).toEqual({ varying: ["market", "lr", "epochs"], shared: [] });
  });

  it("counts ended points, and offers Retry failed only once ended with failures", () => {
    const counts = { pending: 1, queued: 1, running: 1, succeeded: 2, failed: 3, cancelled: 1, skipped: 0 };
    expect(endedCount(counts)).toBe(6);
    expect(canRetryFailed({ counts }, true)).toBe(true);
    expect(canRetryFailed({ counts }, false)).toBe(false);
    expect(canRetryFailed({ counts: { ...counts, failed: 0 } }, true)).toBe(false);
  });
});
