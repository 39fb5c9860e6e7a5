import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { cleanup, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import type { ReactNode } from "react";
import { MemoryRouter } from "react-router-dom";
import { afterEach, describe, expect, it, vi } from "vitest";

import type { Run } from "../api/types";
import { formatInstant } from "../lib/time";
import { JobActions } from "./JobActions";
import { RunsTable } from "./Runs";
import type { ReplayTarget } from "./ReplaySkipped";
import { StatusProvider } from "./Status";

const JOB = "01KAB3X9M2Q8Z0C7D5E4F6G1H2";
const PAUSED_AT = "2026-12-01T09:30:00Z";
const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
const problem = (status: number, detail: string) =>
  new Response(JSON.stringify({ type: "urn:x", title: "t", status, detail, code: "conflict", errors: {} }), {
    status,
    headers: { "Content-Type": "application/problem+json" },
  });

const job = (overrides: Partial<ReplayTarget> = {}): ReplayTarget => ({
  job_id: JOB,
  name: "score",
  status: "ACTIVE",
  triggers: [{ kind: "webhook" }],
  record_skipped_while_paused: true,
  paused_at: PAUSED_AT,
  ...overrides,
});

const replayed = (key: string): Run =>
  ({
    run_id: `${JOB}_h-1795671000000-${key}`,
    job_id: JOB,
    tenant: "default",
    run_key: `h-1795671000000-${key}`,
    trigger: "webhook",
    scheduled_for: "2026-12-01T10:00:00Z",
    state: "SCHEDULED",
    reason: `replay of h-1795670000000-${key} by Ada`,
    attempt: 1,
    job_version: 1,
    created_at: "2026-12-01T10:00:00Z",
    updated_at: "2026-12-01T10:00:00Z",
    transitions: {},
    slots: 1,
    cause: { kind: "webhook", idempotency_key: key, payload: {} },
  }) as Run;

function wrap(children: ReactNode) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  const invalidated = vi.spyOn(client, "invalidateQueries");
  const view = render(
    <QueryClientProvider client={client}>
      <MemoryRouter>
        <StatusProvider>{children}</StatusProvider>
      </MemoryRouter>
    </QueryClientProvider>,
  );
  const rerender = (next: ReactNode) =>
    view.rerender(
      <QueryClientProvider client={client}>
        <MemoryRouter>
          <StatusProvider>{next}</StatusProvider>
        </MemoryRouter>
      </QueryClientProvider>,
    );
  return { invalidated, rerender };
}

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("replaying the events skipped while a job was paused", () => {
  it("is offered only to an ACTIVE job with file or webhook triggers that was paused", () => {
    vi.stubGlobal("fetch", vi.fn());
    const offered = (target: ReplayTarget) => {
      wrap(<JobActions job={target} />);
      const found = screen.queryByRole("button", { name: "Replay skipped events…" }) !== null;
      cleanup();
      return found;
    };
    expect(offered(job())).toBe(true);
    expect(offered(job({ triggers: [
          { kind: "file_arrival", container: "landing", prefix: "", suffix: "", min_time_between_triggers: "PT0S", wait_after_last_change: "PT0S" },
        ] }))).toBe(true);
    expect(offered(job({ status: "PAUSED" }))).toBe(false);
    expect(offered(job({ paused_at: null }))).toBe(false);
    expect(offered(job({ triggers: [] }))).toBe(false);
    expect(offered(job({ triggers: [{ kind: "after", jobs: ["J1"], condition: "all_succeeded", within: "PT12H" }] }))).toBe(false);
    expect(offered({ job_id: JOB, name: "score", status: "ACTIVE" })).toBe(false); // a summary: no triggers known
  });

  it("explains itself in a dialog, calls the endpoint, says how many runs it started and refreshes", async () => {
    const sent: { method: string; path: string; body: string }[] = [];
    const answers = [json({ items: [replayed("a"), replayed("b")], continuation: null }), json({ items: [], continuation: null })];
    vi.stubGlobal("fetch", async (request: Request) => {
      sent.push({ method: request.method, path: new URL(request.url).pathname, body: await request.text() });
      return answers.shift();
    });
    const user = userEvent.setup();
    const { invalidated } = wrap(<JobActions job={job()} />);
    const opener = screen.getByRole("button", { name: "Replay skipped events…" });
    await user.click(opener);
    const dialog = screen.getByRole("dialog", { name: "Replay skipped events of score" });
    expect(dialog.textContent).toContain(
      `Runs the file arrivals and webhook calls recorded as skipped since the job was paused at ${formatInstant(PAUSED_AT)}; each only once.`,
    );
    expect(sent).toEqual([]); // opening it asks nothing

    await user.click(within(dialog).getByRole("button", { name: "Replay events" }));
    const status = within(dialog).getByRole("status");
    await waitFor(() => expect(status.textContent).toMatch(/^Started 2 runs: one for each of the events skipped/));
    expect(sent).toEqual([{ method: "POST", path: `/api/jobs/${JOB}/replay`, body: "" }]);
    expect(invalidated).toHaveBeenCalled(); // the runs list (and the job) are read again

    await user.click(within(dialog).getByRole("button", { name: "Replay events" }));
    await waitFor(() => expect(status.textContent).toMatch(/^Nothing to replay: /));
    expect(sent).toHaveLength(2);

    await user.click(within(dialog).getByRole("button", { name: "Close" }));
    expect(screen.queryByRole("dialog")).toBeNull();
    expect(document.activeElement).toBe(opener); // focus goes back where it was
  });

  it("shows the server's problem when the job is not ACTIVE (409)", async () => {
    vi.stubGlobal("fetch", async () => problem(409, "job 01KAB3X9M2Q8Z0C7D5E4F6G1H2 is PAUSED: resume it first"));
    const user = userEvent.setup();
    wrap(<JobActions job={job()} />);
    await user.click(screen.getByRole("button", { name: "Replay skipped events…" }));
    const dialog = screen.getByRole("dialog", { name: "Replay skipped events of score" });
    await user.click(within(dialog).getByRole("button", { name: "Replay events" }));
    const alert = await within(dialog).findByRole("alert");
    expect(alert.textContent).toBe(`Refused (HTTP 409): job ${JOB} is PAUSED: resume it first`);
    expect(within(dialog).getByRole("status").textContent).toBe("");
  });

  it("says after a resume that skipped events run only when asked, and leads to the dialog", async () => {
    const paused = job({ status: "PAUSED" });
    vi.stubGlobal("fetch", async () =>
      json({ job_id: JOB, message: "Job 'score' resumed", status: "ACTIVE", version: 2, next_fire_at: null, job: {} }),
    );
    const user = userEvent.setup();
    const { rerender } = wrap(<JobActions job={paused} />);
    await user.click(screen.getByRole("button", { name: "Resume" }));
    const announced = screen.getAllByRole("status")[0] as HTMLElement;
    await waitFor(() =>
      expect(announced.textContent).toBe(
        "Resumed score. Files and webhook calls skipped while it was paused are not run unless you replay them.",
      ),
    );
    rerender(<JobActions job={job()} />); // the job read again: ACTIVE
    await user.click(screen.getByRole("button", { name: "Replay them…" }));
    expect(screen.getByRole("dialog", { name: "Replay skipped events of score" })).toBeTruthy();
  });

  it("says nothing more after resuming a job that drops its events while paused", async () => {
    vi.stubGlobal("fetch", async () =>
      json({ job_id: JOB, message: "Job 'score' resumed", status: "ACTIVE", version: 2, next_fire_at: null, job: {} }),
    );
    const user = userEvent.setup();
    const { rerender } = wrap(<JobActions job={job({ status: "PAUSED", record_skipped_while_paused: false })} />);
    await user.click(screen.getByRole("button", { name: "Resume" }));
    const announced = screen.getAllByRole("status")[0] as HTMLElement;
    await waitFor(() => expect(announced.textContent).toBe("Resumed score"));
    rerender(<JobActions job={job({ record_skipped_while_paused: false })} />);
    expect(screen.queryByRole("button", { name: "Replay them…" })).toBeNull();
  });

  it("marks the replays in the runs table, also once they started and their reason is gone", () => {
    vi.stubGlobal("fetch", vi.fn());
    const skipped = { ...replayed("a"), run_id: `${JOB}_h-1795670000000-a`, run_key: "h-1795670000000-a", state: "SKIPPED", reason: "paused" } as Run;
    wrap(
      <RunsTable
        label="Runs"
        jobName="score"
        runs={[{ ...replayed("a"), state: "SUCCEEDED", reason: "" }, replayed("b"), skipped]}
      />,
    );
    const rows = screen.getAllByRole("row").slice(1);
    const origin = (row: HTMLElement | undefined) => row?.querySelector(".origin")?.textContent ?? "";
    expect(origin(rows[0])).toMatch(/^Webhook areplay of h-1795670000000-a▸ Details/);
    expect(origin(rows[1])).toMatch(/^Webhook breplay of h-1795670000000-b by Ada▸ Details/);
    expect(rows[1]?.textContent).not.toMatch(/SCHEDULEDreplay of/); // not said twice, under its state
    expect(origin(rows[2])).toMatch(/^Webhook a▸ Details/);
  });
});
