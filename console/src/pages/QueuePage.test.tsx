import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { cleanup, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import type { ReactNode } from "react";
import { MemoryRouter } from "react-router-dom";
import { afterEach, describe, expect, it, vi } from "vitest";

import type { Run } from "../api/types";
import { RunsTable } from "../components/Runs";
import { StatusProvider } from "../components/Status";
import { QueuePage } from "./QueuePage";

const json = (body: unknown) => new Response(JSON.stringify(body), { status: 200, headers: { "Content-Type": "application/json" } });
const JOB = "01KAB3X9M2Q8Z0C7D5E4F6G1H2";
const soon = new Date(Date.now() + 10 * 60_000).toISOString();
const QUEUE = {
  queue_length: 3,
  running: 1,
  pending: 2,
  queues: {
    urgent: { length: 0, avg_wait: 0, oldest_wait: 0 },
    high: { length: 0, avg_wait: 0, oldest_wait: 0 },
    normal: { length: 2, avg_wait: 95, oldest_wait: 150 },
    low: { length: 0, avg_wait: 0, oldest_wait: 0 },
  },
  pools: {},
  items: [
    {
      run_id: `${JOB}_manual-1`,
      job_id: JOB,
      tenant: "default",
      pool: "gpu",
      priority: "normal",
      queue_position: 1,
      enqueued_at: new Date().toISOString(),
      wait: 150,
      estimated_start_at: soon,
      deadline_at: null,
      slots: 1,
    },
  ],
};

function wrap(children: ReactNode, path = "/queue") {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={client}>
      <MemoryRouter initialEntries={[path]}>
        <StatusProvider>{children}</StatusProvider>
      </MemoryRouter>
    </QueryClientProvider>,
  );
}

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("the queue page", () => {
  it("shows totals, waits per priority in words and the user's waiting runs by job name", async () => {
    const asked: string[] = [];
    vi.stubGlobal("fetch", async (request: Request) => {
      const url = new URL(request.url);
      asked.push(url.pathname + url.search);
      if (url.pathname === "/api/pools") return json({ items: [{ name: "default" }, { name: "gpu" }] });
      if (url.pathname === "/api/queue") return json(QUEUE);
      if (url.pathname === `/api/jobs/${JOB}`) return json({ job_id: JOB, name: "nightly-churn" });
      return new Response("{}", { status: 404 });
    });
    const user = userEvent.setup();
    wrap(<QueuePage />);
    const classes = await screen.findByRole("table", { name: "Waiting by priority" });
    const normal = within(classes).getByRole("rowheader", { name: "Normal" }).closest("tr") as HTMLElement;
    expect(within(normal).getAllByRole("cell").map((c) => c.textContent)).toEqual(["2", "1m 35s", "2m 30s"]);
    const waiting = screen.getByRole("table", { name: "Your waiting runs" });
    const link = await within(waiting).findByRole("link", { name: "nightly-churn" });
    expect(link.getAttribute("href")).toBe(`/jobs/${JOB}`);
    expect(within(waiting).getAllByRole("row")[1]?.textContent).toContain("2m 30s");
    expect(within(waiting).getByRole("button", { name: "Change priority" })).toBeTruthy();
    await user.selectOptions(screen.getByLabelText("Pool"), "gpu");
    await waitFor(() => expect(asked).toContain("/api/queue?pool=gpu"));
  });
});

describe("a job's runs", () => {
  const run = (over: Partial<Run>): Run =>
    ({
      run_id: `${JOB}_k`,
      job_id: JOB,
      tenant: "default",
      run_key: "k",
      trigger: "manual",
      scheduled_for: new Date().toISOString(),
      state: "QUEUED",
      reason: null,
      attempt: 0,
      job_version: 1,
      created_at: new Date().toISOString(),
      updated_at: new Date().toISOString(),
      transitions: {},
      slots: 1,
      pool: "gpu",
      priority: "normal",
      ...over,
    }) as Run;

  it("say where a QUEUED run stands, offer to change its priority, and mark a missed deadline", async () => {
    vi.stubGlobal("fetch", async () => json(run({ queue_position: 2, estimated_start_at: soon })));
    wrap(<RunsTable runs={[run({}), run({ run_id: `${JOB}_old`, state: "SUCCEEDED", deadline_missed_at: new Date().toISOString() })]} label="Runs" jobName="nightly-churn" />);
    const table = screen.getByRole("table", { name: "Runs" });
    const [, queued, ended] = within(table).getAllByRole("row");
    expect(queued?.textContent).toContain("in pool gpu");
    await waitFor(() => expect(queued?.textContent).toMatch(/position 2 · starts ~.*\d:\d\d\s[AP]M/));
    expect(within(queued as HTMLElement).getByRole("button", { name: "Change priority" })).toBeTruthy();
    expect(within(ended as HTMLElement).getByText("Deadline missed")).toBeTruthy();
    expect(within(ended as HTMLElement).queryByRole("button", { name: "Change priority" })).toBeNull();
  });
});
