import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { cleanup, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter, useLocation } from "react-router-dom";
import { afterEach, describe, expect, it, vi } from "vitest";

import { setTenant } from "../api/client";
import type { Analytics } from "../api/types";
import { StatusProvider } from "../components/Status";
import { AnalyticsPage } from "./AnalyticsPage";
import { day, group } from "../test/analytics";

const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
const JOB_A = "01KAB3X9M2Q8Z0C7D5E4F6G1H2";
const JOB_B = "01KAB3X9M2Q8Z0C7D5E4F6G1H3";


const TOTAL = group("all", {
  runs: 16,
  succeeded: 12,
  failed: 2,
  timed_out: 1,
  skipped: 1,
  success_rate: 0.8,
  retry_rate: 0.0667,
  duration_p50_s: 252,
  duration_p95_s: 1830,
  queue_wait_p50_s: 0,
  queue_wait_p95_s: 42,
  fire_lag_p95_s: 1.24,
  deadline_misses: 2,
});

function report(groupBy: Analytics["group_by"], over: Partial<Analytics> = {}): Analytics {
  const byJob = groupBy === "job";
  return {
    window: "P7D",
    first: "2026-11-30",
    last: "2026-12-06",
    group_by: groupBy,
    tenants: ["team-a"],
    total: TOTAL,
    groups: [
      group(byJob ? JOB_A : "model_training", {
        name: byJob ? "nightly-churn" : "model_training",
        tenant: byJob ? "team-a" : null,
        job_type: byJob ? "model_training" : null,
        runs: 11,
        succeeded: 9,
        failed: 1,
        timed_out: 1,
        success_rate: 9 / 11,
        duration_p50_s: 300,
        duration_p95_s: 1830,
        days: [
          day("2026-12-02", { runs: 5, succeeded: 5, success_rate: 1, duration_p50_s: 280 }),
          day("2026-12-03", { runs: 6, succeeded: 4, failed: 1, timed_out: 1, success_rate: 4 / 6, duration_p50_s: 320 }),
        ],
      }),
      group(byJob ? JOB_B : "pipeline", {
        name: byJob ? "feature-refresh" : "pipeline",
        tenant: byJob ? "team-a" : null,
        job_type: byJob ? "pipeline" : null,
        runs: 5,
        succeeded: 3,
        failed: 1,
        skipped: 1,
        success_rate: 0.75,
        duration_p50_s: 45,
        duration_p95_s: 90,
        days: [day("2026-12-06", { runs: 5, succeeded: 3, failed: 1, skipped: 1, success_rate: 0.75, duration_p50_s: 45 })],
      }),
    ],
    ...over,
  };
}

let where = "";
function Where() {
  const location = useLocation();
  where = location.pathname + location.search;
  return null;
}

function wrap(path = "/analytics") {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={client}>
      <MemoryRouter initialEntries={[path]}>
        <StatusProvider>
          <AnalyticsPage />
          <Where />
        </StatusProvider>
      </MemoryRouter>
    </QueryClientProvider>,
  );
}

/** Answers GET /api/analytics with `answer` (by the query it was asked), recording what was asked. */
function serve(answer: (query: URLSearchParams) => Response) {
  const asked: { query: string; tenant: string | null }[] = [];
  vi.stubGlobal("fetch", async (request: Request) => {
    const url = new URL(request.url);
    if (url.pathname !== "/api/analytics") return new Response("{}", { status: 404 });
    asked.push({ query: url.search, tenant: request.headers.get("X-Scheduler-Tenant") });
    return answer(url.searchParams);
  });
  return asked;
}

const figure = (term: string) => screen.getByText(term, { selector: "dt" }).nextElementSibling?.textContent;

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  setTenant(null);
});

describe("the analytics page", () => {
  it("shows the window's headline figures in words, both charts by name and the rankings", async () => {
    const asked = serve((q) => json(report(q.get("group_by") as Analytics["group_by"])));
    const user = userEvent.setup();
    wrap();
    expect(await screen.findByText("Runs", { selector: "dt" })).toBeTruthy();
    expect(asked[0]?.query).toBe("?window=P7D&group_by=job_type");
    expect(figure("Runs")).toBe("16");
    expect(figure("Success rate")).toBe("80%");
    expect(figure("Retry rate")).toBe("6.7%");
    expect(figure("Duration p50")).toBe("4 min 12 s");
    expect(figure("Duration p95")).toBe("30 min 30 s");
    expect(figure("Queue wait p50")).toBe("0 s");
    expect(figure("Queue wait p95")).toBe("42 s");
    expect(figure("Fire lag p95")).toBe("1.2 s");
    expect(figure("Deadline misses")).toBe("2");
    expect(screen.getByText(/^12 succeeded, 2 failed, 1 timed out, 1 skipped\./)).toBeTruthy();
    expect(screen.getByText(/Runs that ended Nov 30 – Dec 6, 2026 \(UTC\), tenant team-a\./)).toBeTruthy();

    const rates = screen.getByRole("img", { name: /^Success rate by day, / });
    expect(rates.getAttribute("aria-label")).toBe(
      "Success rate by day, Nov 30 – Dec 6, 2026, 2 job types: Model training 81.8% overall, lowest 66.7% on Dec 3; Pipeline 75% overall, lowest 75% on Dec 6.",
    );
    expect(screen.getByRole("heading", { name: "Success rate by day" })).toBeTruthy();
    // Model training ran on two days in a row (a line, gaps around it); Pipeline on one (a point, no line).
    const [training, pipeline] = Array.from(rates.querySelectorAll("g.chart-series"));
    expect(training?.querySelector("path")?.getAttribute("d")).toMatch(/^M[\d.]+,[\d.]+ L[\d.]+,[\d.]+$/);
    expect(training?.querySelectorAll("title")).toHaveLength(2);
    expect(pipeline?.querySelector("path")?.getAttribute("d")).toBe("");
    expect(pipeline?.querySelector("title")?.textContent).toBe("Pipeline, Dec 6: 75%");
    const durations = screen.getByRole("img", { name: /^Duration p50 by day, / });
    expect(durations.getAttribute("aria-label")).toContain("Model training 5 min overall, highest 5 min 20 s on Dec 3");

    // The data behind a chart, as a table, on request.
    const show = screen.getByRole("button", { name: "Show data table for success rate by day" });
    expect(show.getAttribute("aria-expanded")).toBe("false");
    expect(screen.queryByRole("table", { name: "Success rate by day: data" })).toBeNull();
    await user.click(show);
    expect(show.getAttribute("aria-expanded")).toBe("true");
    const data = screen.getByRole("table", { name: "Success rate by day: data" });
    expect(within(data).getAllByRole("row").map((r) => r.textContent)).toEqual([
      "Day (UTC)Model trainingPipeline",
      "Dec 2100%—",
      "Dec 366.7%—",
      "Dec 6—75%",
    ]);

    const slow = screen.getByRole("table", { name: "Slowest" });
    expect(within(slow).getAllByRole("rowheader").map((h) => h.textContent)).toEqual(["Model training", "Pipeline"]);
    expect(within(slow).getAllByRole("row")[1]?.textContent).toBe("Model training115 min30 min 30 s");
    expect(within(slow).queryAllByRole("link")).toHaveLength(0);
    const failing = screen.getByRole("table", { name: "Most failing" });
    expect(within(failing).getAllByRole("columnheader").map((h) => h.textContent)).toEqual(["Job type", "Runs", "Failures", "Success rate"]);
    const [first, second] = within(failing).getAllByRole("row").slice(1);
    expect(within(first as HTMLElement).getAllByRole("cell").map((c) => c.textContent)).toEqual(["11", "21 timed out", "81.8%"]);
    expect(within(second as HTMLElement).getAllByRole("cell").map((c) => c.textContent)).toEqual(["5", "1", "75%"]);
  });

  it("keeps its window and grouping in the link, and links each job to its page", async () => {
    const asked = serve((q) => json(report(q.get("group_by") as Analytics["group_by"], { window: q.get("window") ?? "" })));
    const user = userEvent.setup();
    wrap();
    await screen.findByRole("table", { name: "Slowest" });
    await user.selectOptions(screen.getByLabelText("Group by"), "job");
    await waitFor(() => expect(where).toBe("/analytics?window=P7D&group_by=job"));
    const slow = screen.getByRole("table", { name: "Slowest" });
    const link = await within(slow).findByRole("link", { name: "nightly-churn" });
    expect(link.getAttribute("href")).toBe(`/jobs/${JOB_A}`);
    expect(within(slow).getByRole("link", { name: "feature-refresh" }).getAttribute("href")).toBe(`/jobs/${JOB_B}`);
    expect(within(slow).getAllByRole("columnheader")[0]?.textContent).toBe("Job");
    expect(slow.textContent).toContain("Model training"); // the job's type under its name
    expect(within(screen.getByRole("table", { name: "Most failing" })).getByRole("link", { name: "nightly-churn" })).toBeTruthy();
    expect(screen.getByRole("img", { name: /^Success rate by day, .*, 2 jobs: nightly-churn 81\.8% overall/ })).toBeTruthy();

    await user.selectOptions(screen.getByLabelText("Window"), "P30D");
    await waitFor(() => expect(where).toBe("/analytics?window=P30D&group_by=job"));
    await waitFor(() => expect(asked.map((a) => a.query)).toEqual(["?window=P7D&group_by=job_type", "?window=P7D&group_by=job", "?window=P30D&group_by=job"]));
  });

  it("opens on the link's window and grouping, and says which of the link's values it could not use", async () => {
    const asked = serve((q) => json(report(q.get("group_by") as Analytics["group_by"])));
    wrap("/analytics?window=P14D&group_by=tenant");
    await screen.findByRole("table", { name: "Slowest" });
    expect(asked[0]?.query).toBe("?window=P14D&group_by=tenant");
    expect((screen.getByLabelText("Window") as HTMLSelectElement).selectedOptions[0]?.textContent).toBe("Last 14 days");
    expect((screen.getByLabelText("Group by") as HTMLSelectElement).value).toBe("tenant");
    cleanup();

    const again = serve(() => json(report("job_type")));
    wrap("/analytics?window=PT12H&group_by=pool");
    await screen.findByRole("table", { name: "Slowest" });
    expect(again[0]?.query).toBe("?window=P7D&group_by=job_type");
    expect(screen.getByText("The link asks for window “PT12H” and group by “pool”, which the console does not know: showing the last 7 days by job type instead.")).toBeTruthy();
  });

  it("acts in the tenant the header picker chose", async () => {
    setTenant("team-b");
    const asked = serve(() => json(report("job_type", { tenants: ["team-b"] })));
    wrap();
    await screen.findByRole("table", { name: "Slowest" });
    expect(asked[0]?.tenant).toBe("team-b");
    expect(screen.getByText(/tenant team-b\./)).toBeTruthy();
  });

  it("says when no run ended in the window, with nothing to chart", async () => {
    serve(() => json(report("job_type", { window: "P1D", first: "2026-12-06", last: "2026-12-06", total: group("all"), groups: [] })));
    wrap("/analytics?window=P1D");
    expect(await screen.findByText("No runs ended in this window (today).")).toBeTruthy();
    expect(screen.getByText(/Runs that ended on Dec 6, 2026 \(UTC\)/)).toBeTruthy();
    expect(screen.queryByRole("img")).toBeNull();
    expect(screen.queryByRole("table")).toBeNull();
    expect(screen.getByRole("link", { name: "see your jobs" })).toBeTruthy();
  });

  it("charts the eight groups with the most runs and says how many more there are", async () => {
    const many = Array.from({ length: 11 }, (_, i) =>
      group(`team-${String(i).padStart(2, "0")}`, {
        runs: 20 - i,
        succeeded: 20 - i,
        success_rate: 1,
        duration_p50_s: 10 + i,
        duration_p95_s: 20 + i,
        days: [day("2026-12-05", { runs: 20 - i, success_rate: 1, duration_p50_s: 10 + i })],
      }),
    );
    serve(() => json(report("tenant", { groups: many, tenants: many.map((g) => g.key) })));
    wrap("/analytics?group_by=tenant");
    const rates = await screen.findByRole("img", { name: /^Success rate by day, / });
    expect(rates.getAttribute("aria-label")).toContain("the top 8 of 11 tenants by runs: team-00 100% overall");
    expect(rates.querySelectorAll("g.chart-series")).toHaveLength(8);
    expect(screen.getByText(/The charts show the 8 tenants with the most runs; 3 more had runs in this window/)).toBeTruthy();
    const slow = screen.getByRole("table", { name: "Slowest" });
    expect(within(slow).getAllByRole("rowheader").map((h) => h.textContent)).toEqual(
      ["10", "09", "08", "07", "06", "05", "04", "03", "02", "01"].map((n) => `team-${n}`),
    );
    expect(screen.getByText("No run failed or timed out in this window.")).toBeTruthy();
  });

  it("shows the API's refusal like every page, with a way to try again", async () => {
    let calls = 0;
    serve(() => {
      calls += 1;
      return calls === 1
        ? new Response(JSON.stringify({ title: "Service Unavailable", status: 503, detail: "storage is busy" }), {
            status: 503,
            headers: { "Content-Type": "application/problem+json", "Retry-After": "5" },
          })
        : json(report("job_type"));
    });
    const user = userEvent.setup();
    wrap();
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("The scheduler is unavailable right now (storage is busy). Try again in 5 s.");
    await user.click(within(alert).getByRole("button", { name: "Try again" }));
    expect(await screen.findByRole("table", { name: "Slowest" })).toBeTruthy();
    expect(screen.queryByRole("alert")).toBeNull();
  });
});
