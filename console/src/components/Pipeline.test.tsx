import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { cleanup, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import type { ReactNode } from "react";
import { afterEach, describe, expect, it, vi } from "vitest";

import type { Run, Step } from "../api/types";
import { PipelineRun } from "./Pipeline";
import { RunsTable } from "./Runs";
import { StatusProvider } from "./Status";

const JOB = "01KAB3X9M2Q8Z0C7D5E4F6G1H2";
const RUN_ID = `${JOB}_m-1`;
const T = (s: number) => new Date(Date.UTC(2026, 5, 1, 12, 0, s)).toISOString();
const json = (status: number, body: unknown, type = "application/json") =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": type } });

const step = (key: string, state: Step["state"], over: Partial<Step> = {}): Step => {
  const ran = !["PENDING", "UPSTREAM_FAILED", "EXCLUDED"].includes(state);
  return {
    key,
    state,
    attempts: ran && state !== "ACTIVE" ? 1 : 0,
    run_id: ran ? `${RUN_ID}.${key}` : null,
    depends_on: [],
    run_if: "ALL_SUCCESS",
    started_at: ran ? T(0) : null,
    ended_at: state === "PENDING" || state === "ACTIVE" ? null : T(30),
    ...over,
  };
};

const run = (over: Partial<Run>): Run =>
  ({
    run_id: RUN_ID,
    job_id: JOB,
    tenant: "default",
    run_key: "m-1",
    trigger: "manual",
    scheduled_for: T(0),
    state: "FAILED",
    reason: "FAILED",
    attempt: 1,
    job_version: 1,
    created_at: T(0),
    updated_at: T(40),
    transitions: {},
    attempts: [],
    slots: 1,
    ...over,
  }) as Run;

// a → b, a → c, (b, c) → d (ALL_DONE); b → rollback (AT_LEAST_ONE_FAILED); b → notify
const ENDED: Step[] = [
  step("a", "SUCCEEDED"),
  step("b", "FAILED", { depends_on: ["a"] }),
  step("c", "SUCCEEDED", { depends_on: ["a"] }),
  step("d", "SUCCEEDED", { depends_on: ["b", "c"], run_if: "ALL_DONE" }),
  step("rollback", "SUCCEEDED", { depends_on: ["b"], run_if: "AT_LEAST_ONE_FAILED" }),
  step("notify", "UPSTREAM_FAILED", { depends_on: ["b"], ended_at: T(20) }),
];

/** GET /api/runs/{step run}: a step's own run with one attempt in Databricks (id 100 + its place). */
function stepRun(runId: string, state = "SUCCEEDED") {
  const key = runId.split(".").pop() ?? "";
  const id = 100 + ENDED.findIndex((s) => s.key === key);
  return {
    ...run({ run_id: runId, state: state as Run["state"], reason: "" }),
    step: key,
    pipeline_run_id: RUN_ID,
    attempts: [{ number: 1, databricks_run_id: id, run_page_url: `https://dbc.example/#run/${id}`, launched_at: T(0), result: null }],
  };
}

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

function wrap(children: ReactNode) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={client}>
      <StatusProvider>{children}</StatusProvider>
    </QueryClientProvider>,
  );
}

const rowOf = (table: HTMLElement, key: string) =>
  within(table).getByRole("rowheader", { name: key }).closest("tr") as HTMLElement;

describe("a pipeline run's steps", () => {
  it("draws the graph with a summary for its name and lists every step in the table 'Steps'", async () => {
    const asked: string[] = [];
    vi.stubGlobal("fetch", async (request: Request) => {
      const path = decodeURIComponent(new URL(request.url).pathname);
      asked.push(`${request.method} ${path}`);
      return json(200, stepRun(path.replace("/api/runs/", "")));
    });
    wrap(<PipelineRun run={run({ steps: ENDED })} />);
    const graph = screen.getByRole("img", { name: "Pipeline steps: 4 succeeded, 1 failed, 1 upstream failed" });
    // a box per step, with its state written in it (not colour alone), an arrow per dependency
    expect(graph.querySelectorAll("g.step-box")).toHaveLength(6);
    expect(graph.querySelectorAll("path.pipeline-arrow")).toHaveLength(6);
    expect(graph.querySelector("g.step-box.step-FAILED")?.textContent).toContain("FAILED");
    expect(graph.querySelector("g.step-box.step-UPSTREAM_FAILED.step-not-run")?.textContent).toContain("not run");
    // non-default run_if is tagged on the box
    expect(graph.textContent).toContain("all done");
    expect(graph.textContent).toContain("≥1 failed");

    const table = screen.getByRole("table", { name: "Steps" });
    const headers = within(table).getAllByRole("columnheader").map((h) => h.textContent);
    expect(headers).toEqual(["Step", "State", "Attempts", "Depends on", "Run if", "Started", "Duration", "Databricks run"]);
    const b = rowOf(table, "b");
    expect(within(b).getAllByRole("cell").map((c) => c.textContent)).toEqual([
      "FAILED",
      "1",
      "a",
      "ALL_SUCCESS",
      expect.stringMatching(/2026/),
      "30 s",
      expect.stringMatching(/Databricks run 101|—/),
    ]);
    const link = await within(b).findByRole("link", { name: "Databricks run 101" });
    expect(link.getAttribute("href")).toBe("https://dbc.example/#run/101");
    expect(rowOf(table, "d").textContent).toContain("ALL_DONE");
    expect(rowOf(table, "d").textContent).toContain("b, c");

    // UPSTREAM_FAILED: never ran, said so; no attempt, no start, no link, its run never asked for
    const notify = rowOf(table, "notify");
    expect(notify.textContent).toContain("UPSTREAM_FAILED");
    expect(notify.textContent).toContain("not run: its run if was not met");
    const cells = within(notify).getAllByRole("cell").map((c) => c.textContent);
    expect(cells[1]).toBe("0");
    expect(cells[4]).toBe("—");
    expect(cells[5]).toBe("not run");
    expect(within(notify).queryByRole("link")).toBeNull();
    await waitFor(() => expect(asked).toHaveLength(5));
    expect(asked.some((a) => a.includes(".notify"))).toBe(false);
    expect(asked.every((a) => a.startsWith("GET "))).toBe(true);

    // an ended pipeline run: nothing to cancel, and never a retry
    expect(screen.queryByRole("button", { name: /Cancel/ })).toBeNull();
    expect(screen.queryByRole("button", { name: /Retry/ })).toBeNull();
  });

  it("offers no Retry on a failed pipeline run in the runs table, but keeps it for a plain failed run", () => {
    vi.stubGlobal("fetch", async (request: Request) => json(200, stepRun(decodeURIComponent(new URL(request.url).pathname).replace("/api/runs/", ""))));
    const plain = run({ run_id: `${JOB}_m-0`, run_key: "m-0", reason: "boom", steps: null, scheduled_for: T(-60) });
    wrap(<RunsTable runs={[run({ steps: ENDED }), plain]} label="Runs" jobName="etl" onRetry={() => undefined} />);
    const table = screen.getByRole("table", { name: "Runs" });
    expect(within(table).getAllByRole("button", { name: "Retry" })).toHaveLength(1);
    const pipelineRow = within(table).getAllByRole("row")[1] as HTMLElement;
    expect(within(pipelineRow).queryByRole("button", { name: "Retry" })).toBeNull();
    expect(pipelineRow.textContent).toContain("6 steps");
    expect(within(pipelineRow).getAllByText("FAILED")).toHaveLength(1); // the result is not repeated as a reason
    // the newest pipeline run shows its steps at first; its button folds them
    const toggle = within(pipelineRow).getByRole("button", { name: /^Steps of the run scheduled for/ });
    expect(toggle.getAttribute("aria-expanded")).toBe("true");
    expect(screen.getByRole("table", { name: "Steps" })).toBeTruthy();
  });

  it("folds and unfolds the steps", async () => {
    vi.stubGlobal("fetch", async (request: Request) => json(200, stepRun(decodeURIComponent(new URL(request.url).pathname).replace("/api/runs/", ""))));
    const user = userEvent.setup();
    wrap(<RunsTable runs={[run({ steps: ENDED })]} label="Runs" jobName="etl" pipeline />);
    const toggle = screen.getByRole("button", { name: /^Steps of the run/ });
    await user.click(toggle);
    expect(toggle.getAttribute("aria-expanded")).toBe("false");
    expect(screen.queryByRole("table", { name: "Steps" })).toBeNull();
    expect(screen.queryByRole("img")).toBeNull();
    await user.click(toggle);
    expect(screen.getByRole("img", { name: /^Pipeline steps:/ })).toBeTruthy();
  });

  it("shows SUCCEEDED_WITH_FAILURES as an ended state: no cancel, no polling, coloured as a warning", async () => {
    const fetch = vi.fn(async (request: Request) => json(200, stepRun(decodeURIComponent(new URL(request.url).pathname).replace("/api/runs/", ""))));
    vi.stubGlobal("fetch", fetch);
    const steps = [step("a", "SUCCEEDED"), step("b", "FAILED", { depends_on: ["a"] }), step("c", "SUCCEEDED", { depends_on: ["b"], run_if: "ALL_DONE" })];
    wrap(<RunsTable runs={[run({ state: "SUCCEEDED_WITH_FAILURES", reason: "SUCCEEDED_WITH_FAILURES", steps })]} label="Runs" jobName="etl" pipeline />);
    const state = screen.getByRole("table", { name: "Runs" }).querySelector(".state-SUCCEEDED_WITH_FAILURES");
    expect(state?.textContent).toBe("SUCCEEDED_WITH_FAILURES");
    expect(screen.queryByRole("button", { name: "Cancel run" })).toBeNull();
    await waitFor(() => expect(fetch).toHaveBeenCalledTimes(3)); // the three steps' runs, not the pipeline run
    expect(fetch.mock.calls.every(([r]) => new URL((r as Request).url).pathname.includes("."))).toBe(true);
  });
});

describe("a pipeline run under way", () => {
  const ACTIVE: Step[] = [
    step("a", "SUCCEEDED"),
    step("train", "ACTIVE", { depends_on: ["a"], started_at: new Date(Date.now() - 65_000).toISOString() }),
    step("publish", "PENDING", { depends_on: ["train"] }),
  ];
  const running = run({ state: "RUNNING", reason: "", steps: ACTIVE, updated_at: new Date().toISOString() });

  function stack(answers: { cancel?: () => Response } = {}) {
    const sent: string[] = [];
    vi.stubGlobal("fetch", async (request: Request) => {
      const path = decodeURIComponent(new URL(request.url).pathname);
      sent.push(`${request.method} ${path}`);
      if (request.method === "POST") return answers.cancel?.() ?? json(200, running);
      if (path === `/api/runs/${RUN_ID}`) return json(200, running);
      return json(200, stepRun(path.replace("/api/runs/", ""), path.endsWith(".train") ? "RUNNING" : "SUCCEEDED"));
    });
    return sent;
  }

  it("says how long a step has run, and cancels it after a confirmation", async () => {
    const sent = stack();
    const user = userEvent.setup();
    wrap(<RunsTable runs={[running]} label="Runs" jobName="etl" pipeline />);
    expect(screen.getByRole("img", { name: "Pipeline steps: 1 succeeded, 1 running, 1 pending" })).toBeTruthy();
    const table = screen.getByRole("table", { name: "Steps" });
    expect(rowOf(table, "train").textContent).toMatch(/running for 1 min \d+ s/);
    expect(rowOf(table, "publish").textContent).toContain("PENDING");
    expect(within(rowOf(table, "publish")).queryByRole("button")).toBeNull();
    await user.click(within(rowOf(table, "train")).getByRole("button", { name: "Cancel step train" }));
    const dialog = screen.getByRole("alertdialog", { name: "Cancel step train?" });
    expect(dialog.textContent).toContain("The pipeline goes on");
    await user.click(within(dialog).getByRole("button", { name: "Cancel step" }));
    await waitFor(() => expect(dialog.hasAttribute("open")).toBe(false));
    expect(sent).toContain(`POST /api/runs/${RUN_ID}.train/cancel`);
    expect(sent.filter((s) => s.startsWith("POST"))).toHaveLength(1);
    await waitFor(() => expect(screen.getByRole("status").textContent).toBe("Cancelled step train"));
  });

  it("explains a step that ended before the cancel reached it", async () => {
    stack({
      cancel: () =>
        json(409, { title: "Conflict", status: 409, detail: "run x has ended", errors: { state: "SUCCEEDED" } }, "application/problem+json"),
    });
    const user = userEvent.setup();
    wrap(<RunsTable runs={[running]} label="Runs" jobName="etl" pipeline />);
    await user.click(screen.getByRole("button", { name: "Cancel step train" }));
    const dialog = screen.getByRole("alertdialog", { name: "Cancel step train?" });
    await user.click(within(dialog).getByRole("button", { name: "Cancel step" }));
    expect((await within(dialog).findByRole("alert")).textContent).toContain("already ended (SUCCEEDED)");
  });

  it("cancels the whole pipeline run from its row, after a confirmation, and never offers Retry", async () => {
    const sent = stack();
    const user = userEvent.setup();
    wrap(<RunsTable runs={[running]} label="Runs" jobName="etl" pipeline onRetry={() => undefined} />);
    expect(screen.queryByRole("button", { name: "Retry" })).toBeNull();
    await user.click(screen.getByRole("button", { name: "Cancel run" }));
    const dialog = screen.getByRole("alertdialog", { name: "Cancel this run of etl?" });
    expect(dialog.textContent).toContain("never will");
    await user.click(within(dialog).getByRole("button", { name: "Keep run" }));
    expect(dialog.hasAttribute("open")).toBe(false);
    expect(sent.filter((s) => s.startsWith("POST"))).toEqual([]);
    await user.click(screen.getByRole("button", { name: "Cancel run" }));
    await user.click(within(dialog).getByRole("button", { name: "Cancel run" }));
    await waitFor(() => expect(sent).toContain(`POST /api/runs/${RUN_ID}/cancel`));
    await waitFor(() => expect(screen.getByRole("status").textContent).toMatch(/^Cancelled the run of etl/));
  });
});

describe("repairing a pipeline run", () => {
  it("offers Repair failed steps on a failed run, sends all_failed, and lists the repair", async () => {
    const sent: { path: string; body: string }[] = [];
    const repaired = run({
      state: "RUNNING",
      steps: ENDED,
      repair_history: [{ number: 1, at: T(50), by: "Alice", steps: ["b", "d"] }],
    });
    vi.stubGlobal("fetch", async (request: Request) => {
      const path = decodeURIComponent(new URL(request.url).pathname);
      if (request.method === "POST") {
        sent.push({ path, body: await request.text() });
        return json(200, repaired);
      }
      return json(200, path === `/api/runs/${RUN_ID}` ? run({ steps: ENDED }) : stepRun(path.replace("/api/runs/", "")));
    });
    const user = userEvent.setup();
    wrap(<PipelineRun run={run({ steps: ENDED })} />);
    await user.click(screen.getByRole("button", { name: "Repair failed steps" }));
    expect(sent).toEqual([{ path: `/api/runs/${RUN_ID}/repair`, body: JSON.stringify({ all_failed: true }) }]);
    await waitFor(() => expect(screen.getByRole("status").textContent).toBe("Repair 1 started: b, d run again"));
  });

  it("offers no repair on a run that succeeded or is under way, and lists past repairs", () => {
    const history = [{ number: 1, at: T(50), by: "Alice", steps: ["b", "d"] }];
    wrap(<PipelineRun run={run({ state: "SUCCEEDED", steps: ENDED, repair_history: history })} />);
    expect(screen.queryByRole("button", { name: "Repair failed steps" })).toBeNull();
    expect(screen.getByRole("list", { name: "Repairs" }).textContent).toContain("Repair 1 by Alice");
  });
});
