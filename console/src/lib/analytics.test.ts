import { describe, expect, it } from "vitest";

import {
  chartSummary,
  daysOf,
  dayTicks,
  durationP50,
  durationTicks,
  formatDay,
  formatPercent,
  formatRange,
  formatSeconds,
  groupName,
  linePath,
  mostFailing,
  outcomesInWords,
  readControls,
  segments,
  seriesOf,
  slowest,
  successRate,
  validWindow,
  windowLabel,
  windowOptions,
} from "./analytics";
import { day, group, NONE } from "../test/analytics";


describe("the analytics page's controls", () => {
  it("come from the link, with the defaults for what is missing", () => {
    expect(readControls(new URLSearchParams(""))).toEqual({ window: "P7D", groupBy: "job_type", ignored: [] });
    expect(readControls(new URLSearchParams("window=P30D&group_by=job"))).toEqual({ window: "P30D", groupBy: "job", ignored: [] });
    expect(readControls(new URLSearchParams("window=p14d&group_by=tenant"))).toMatchObject({ window: "P14D", groupBy: "tenant" });
  });
  it("say which of the link's values the API would refuse, and use the defaults instead", () => {
    const read = readControls(new URLSearchParams("window=PT12H&group_by=pool"));
    expect(read).toEqual({ window: "P7D", groupBy: "job_type", ignored: ["window “PT12H”", "group by “pool”"] });
    expect(validWindow("P91D")).toBeNull();
    expect(validWindow("P0D")).toBeNull();
    expect(validWindow("P90D")).toBe("P90D");
    expect(validWindow("P1D")).toBe("P1D");
  });
  it("name the windows, a link's own among them", () => {
    expect(windowLabel("P1D")).toBe("Today");
    expect(windowLabel("P90D")).toBe("Last 90 days");
    expect(windowLabel("P14D")).toBe("Last 14 days");
    expect(windowOptions("P7D").map((w) => w.value)).toEqual(["P1D", "P7D", "P30D", "P90D"]);
    expect(windowOptions("P14D").map((w) => w.label)).toEqual(["Today", "Last 7 days", "Last 30 days", "Last 90 days", "Last 14 days"]);
  });
});

describe("figures in words", () => {
  it("give rates as percentages, never rounding to 100% or 0% what is not", () => {
    expect(formatPercent(0.934)).toBe("93.4%");
    expect(formatPercent(0.9344)).toBe("93.4%");
    expect(formatPercent(1)).toBe("100%");
    expect(formatPercent(0.5)).toBe("50%");
    expect(formatPercent(0)).toBe("0%");
    expect(formatPercent(0.9999)).toBe("99.9%");
    expect(formatPercent(0.0001)).toBe("0.1%");
    expect(formatPercent(0.8125)).toBe("81.3%");
    expect(formatPercent(null)).toBe("—");
  });
  it("give durations in the two largest units", () => {
    expect(formatSeconds(252)).toBe("4 min 12 s");
    expect(formatSeconds(240)).toBe("4 min");
    expect(formatSeconds(45.4)).toBe("45 s");
    expect(formatSeconds(59.6)).toBe("1 min");
    expect(formatSeconds(2.34)).toBe("2.3 s");
    expect(formatSeconds(3)).toBe("3 s");
    expect(formatSeconds(9.96)).toBe("10 s");
    expect(formatSeconds(0.04)).toBe("< 0.1 s");
    expect(formatSeconds(0)).toBe("0 s");
    expect(formatSeconds(7500)).toBe("2 h 5 min");
    expect(formatSeconds(3600)).toBe("1 h");
    expect(formatSeconds(3 * 86400 + 4 * 3600 + 100)).toBe("3 d 4 h");
    expect(formatSeconds(null)).toBe("—");
    expect(formatSeconds(undefined)).toBe("—");
  });
  it("list the outcomes that happened", () => {
    expect(outcomesInWords({ ...NONE, runs: 16, succeeded: 12, failed: 2, timed_out: 1, skipped: 1 })).toBe(
      "12 succeeded, 2 failed, 1 timed out, 1 skipped",
    );
    expect(outcomesInWords({ ...NONE, runs: 1234, succeeded: 1234 })).toBe("1,234 succeeded");
    expect(outcomesInWords(NONE)).toBe("no runs");
  });
  it("name groups as people know them", () => {
    expect(groupName({ key: "model_training", name: "model_training" }, "job_type")).toBe("Model training");
    expect(groupName({ key: "custom", name: "custom" }, "job_type")).toBe("custom");
    expect(groupName({ key: "01KAB", name: "nightly" }, "job")).toBe("nightly");
    expect(groupName({ key: "team-a", name: "team-a" }, "tenant")).toBe("team-a");
  });
});

describe("days", () => {
  it("cover the window from its first to its last UTC day", () => {
    expect(daysOf("2026-11-30", "2026-12-06")).toEqual([
      "2026-11-30",
      "2026-12-01",
      "2026-12-02",
      "2026-12-03",
      "2026-12-04",
      "2026-12-05",
      "2026-12-06",
    ]);
    expect(daysOf("2026-12-06", "2026-12-06")).toEqual(["2026-12-06"]);
    // a daylight saving change in the browser's zone changes nothing: the days are UTC's
    expect(daysOf("2027-03-10", "2027-03-16")).toHaveLength(7);
    expect(daysOf("2026-09-08", "2026-12-06")).toHaveLength(90);
    expect(daysOf("2026-12-06", "2026-12-01")).toEqual([]);
  });
  it("read as dates, the year once unless it changes", () => {
    expect(formatDay("2026-12-06")).toBe("Dec 6");
    expect(formatRange("2026-11-30", "2026-12-06")).toBe("Nov 30 – Dec 6, 2026");
    expect(formatRange("2026-12-06", "2026-12-06")).toBe("Dec 6, 2026");
    expect(formatRange("2026-12-28", "2027-01-03")).toBe("Dec 28, 2026 – Jan 3, 2027");
  });
  it("are labelled on the axis at most so many times, today always", () => {
    expect(dayTicks(7, 10)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(dayTicks(30, 6)).toEqual([4, 9, 14, 19, 24, 29]);
    expect(dayTicks(90, 4)).toEqual([20, 43, 66, 89]);
    expect(dayTicks(1, 8)).toEqual([0]);
    expect(dayTicks(0, 8)).toEqual([]);
  });
});

describe("series", () => {
  const days = daysOf("2026-11-30", "2026-12-06");
  const groups = [
    group("model_training", {
      runs: 9,
      success_rate: 0.8,
      duration_p50_s: 200,
      days: [
        day("2026-12-01", { runs: 4, success_rate: 1, duration_p50_s: 180 }),
        day("2026-12-02", { runs: 3, success_rate: 2 / 3, duration_p50_s: 240 }),
        day("2026-12-04", { runs: 1, success_rate: null, duration_p50_s: null }), // only a skipped run
        day("2026-12-06", { runs: 1, success_rate: 1, duration_p50_s: 150 }),
      ],
    }),
    group("pipeline", { runs: 1, success_rate: 1, duration_p50_s: 30, days: [day("2026-12-06", { runs: 1, success_rate: 1, duration_p50_s: 30 })] }),
  ];

  it("have a value per day, none where a day has no runs or none that count", () => {
    const [training, pipeline] = seriesOf(groups, days, successRate, "job_type");
    expect(training).toEqual({
      key: "model_training",
      label: "Model training",
      values: [null, 1, 2 / 3, null, null, null, 1],
      overall: 0.8,
    });
    expect(pipeline?.values).toEqual([null, null, null, null, null, null, 1]);
    expect(seriesOf(groups, days, durationP50, "job_type")[0]?.values).toEqual([null, 180, 240, null, null, null, 150]);
  });
  it("keep the groups with most runs, eight at most", () => {
    const many = Array.from({ length: 12 }, (_, i) => group(`job-${i}`, { runs: 12 - i }));
    const shown = seriesOf(many, days, successRate, "tenant");
    expect(shown).toHaveLength(8);
    expect(shown.map((s) => s.key)).toEqual(many.slice(0, 8).map((g) => g.key));
  });
  it("split into lines at the gaps; a lone point draws no line", () => {
    expect(segments([null, 1, 2, null, 3, null, 4, 5])).toEqual([
      { start: 1, values: [1, 2] },
      { start: 4, values: [3] },
      { start: 6, values: [4, 5] },
    ]);
    const p = (x: number, y: number) => ({ x, y });
    expect(linePath([null, p(1, 10), p(2, 20), null, p(4, 40), null, p(6, 60), p(7, 70)])).toBe("M1,10 L2,20 M6,60 L7,70");
    expect(linePath([p(1, 1)])).toBe("");
  });
  it("scale durations to whole units", () => {
    expect(durationTicks(240)).toEqual([0, 60, 120, 180, 240]);
    expect(durationTicks(250)).toEqual([0, 120, 240, 360]);
    expect(durationTicks(3)).toEqual([0, 1, 2, 3]);
    expect(durationTicks(0.3)).toEqual([0, 0.1, 0.2, 0.3]);
    expect(durationTicks(0)).toEqual([0, 1]);
    expect(durationTicks(5 * 3600)).toEqual([0, 7200, 14400, 21600]);
  });
  it("are summed up for the chart's accessible name", () => {
    const rates = seriesOf(groups, days, successRate, "job_type");
    expect(chartSummary({ title: "Success rate by day", days, series: rates, format: formatPercent, extreme: "lowest", plural: "job types", total: 2 })).toBe(
      "Success rate by day, Nov 30 – Dec 6, 2026, 2 job types: Model training 80% overall, lowest 66.7% on Dec 2; Pipeline 100% overall, lowest 100% on Dec 6.",
    );
    const durations = seriesOf(groups.slice(0, 1), days, durationP50, "job_type");
    expect(chartSummary({ title: "Duration p50 by day", days, series: durations, format: formatSeconds, extreme: "highest", plural: "job types", total: 11 })).toBe(
      "Duration p50 by day, Nov 30 – Dec 6, 2026, the top 1 of 11 job types by runs: Model training 3 min 20 s overall, highest 4 min on Dec 2.",
    );
    const empty = seriesOf([group("x", { runs: 1, days: [day("2026-12-06", { runs: 1, skipped: 1 })] })], days, successRate, "tenant");
    expect(chartSummary({ title: "Success rate by day", days, series: empty, format: formatPercent, extreme: "lowest", plural: "tenants", total: 1 })).toBe(
      "Success rate by day, Nov 30 – Dec 6, 2026: no data.",
    );
  });
});

describe("rankings", () => {
  const groups = [
    group("a", { name: "alpha", runs: 10, failed: 1, timed_out: 1, success_rate: 0.8, duration_p95_s: 60 }),
    group("b", { name: "beta", runs: 4, failed: 2, success_rate: 0.5, duration_p95_s: 600 }),
    group("c", { name: "gamma", runs: 3, succeeded: 3, success_rate: 1, duration_p95_s: 600 }),
    group("d", { name: "delta", runs: 2, skipped: 2 }), // never started: no duration
    group("e", { name: "epsilon", runs: 5, timed_out: 2, success_rate: 0.6, duration_p95_s: 3600 }),
  ];
  it("put the slowest first by p95 duration (then most runs), leaving out what never started", () => {
    expect(slowest(groups).map((g) => g.key)).toEqual(["e", "b", "c", "a"]);
    expect(slowest(groups, 2).map((g) => g.key)).toEqual(["e", "b"]);
  });
  it("put the most failures first (failed and timed out), then the lowest success rate, leaving out groups without", () => {
    expect(mostFailing(groups).map((g) => g.key)).toEqual(["b", "e", "a"]);
  });
  it("keep ten rows", () => {
    const many = Array.from({ length: 14 }, (_, i) => group(`g${i}`, { failed: i + 1, duration_p95_s: i }));
    expect(slowest(many)).toHaveLength(10);
    expect(mostFailing(many)[0]?.key).toBe("g13");
  });
});
