import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { cleanup, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import type { ReactNode } from "react";
import { MemoryRouter } from "react-router-dom";
import { afterEach, describe, expect, it, vi } from "vitest";

import { api, call } from "../api/client";
import type { Job, Notice } from "../api/types";
import { bodyOf, emptyForm, type FormState, formFromJob } from "../lib/form";
import { JobForm } from "./JobForm";
import { JobNotifications, RunNotices } from "./Notifications";
import { StatusProvider } from "./Status";

const JOB = "01KAB3X9M2Q8Z0C7D5E4F6G1H2";
const SLACK = "https://hooks.slack.com/services/T000/B000/XXXXSECRET";
const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
const problem = (status: number, detail: string, errors: Record<string, string> = {}) =>
  new Response(JSON.stringify({ type: "urn:x", title: "t", status, detail, code: "c", errors }), {
    status,
    headers: { "Content-Type": "application/problem+json" },
  });

function wrap(children: ReactNode) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={client}>
      <MemoryRouter>
        <StatusProvider>{children}</StatusProvider>
      </MemoryRouter>
    </QueryClientProvider>,
  );
}

function job(overrides: Partial<Job> = {}): Job {
  return {
    job_id: JOB,
    tenant: "default",
    status: "ACTIVE",
    version: 3,
    name: "churn",
    job_type: "model_training",
    task: { kind: "databricks_job", job_id: 7, parameters: {} },
    schedule: { cron: "30 1 * * *", timezone: "UTC" },
    overlap: "skip",
    misfire: "fire_once",
    priority: "normal",
    pool: "default",
    slots: 1,
    record_skipped_while_paused: false,
    notifications: {
      on_start: [],
      on_success: [],
      on_failure: [
        { kind: "slack", url: SLACK },
        { kind: "webhook", url: "https://hooks.example.com/ml", secret_ref: "ml-hook" },
      ],
      on_deadline_missed: [],
      on_duration_warning: [{ kind: "teams", url: "https://prod-1.westeurope.logic.azure.com/workflows/x?sig=s3" }],
      duration_warning_after: "PT90M",
      only_on_last_attempt: true,
      no_alert_for_skipped: true,
      no_alert_for_cancelled: true,
    },
    ...overrides,
  } as unknown as Job;
}

/** The form, whose submit POSTs the body (answers come from the stubbed fetch). */
function renderForm(initial: FormState, bodies: Record<string, unknown>[], answer: () => Response) {
  vi.stubGlobal("fetch", async (request: Request) => {
    const path = new URL(request.url).pathname;
    if (path === "/api/pools") return json({ items: [] });
    if (path === "/api/schedules/preview") return json({ timezone: "UTC", fire_times: [] });
    bodies.push((await request.json()) as Record<string, unknown>);
    return answer();
  });
  return wrap(
    <JobForm
      initial={initial}
      submitLabel="Schedule job"
      onSubmit={async (form) => {
        await call(api.POST("/api/jobs/schedule", { body: bodyOf(form) as never }));
      }}
    />,
  );
}

const errorOf = (field: HTMLElement) => document.getElementById(field.getAttribute("aria-describedby")?.split(" ")[0] ?? "")?.textContent;

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("the job form's notifications", () => {
  it("stay a button until asked, then add destinations per event and show the server's error at the URL", async () => {
    const bodies: Record<string, unknown>[] = [];
    const https = "a destination is reached over https (plain http only on loopback)";
    renderForm(emptyForm("UTC"), bodies, () => problem(422, "the request is not valid", { "notifications.on_success.1.slack.url": https }));
    const user = userEvent.setup();
    const section = screen.getByRole("group", { name: "Notifications" });
    expect(within(section).queryByLabelText("URL")).toBeNull();
    expect(within(section).queryByRole("checkbox")).toBeNull();
    expect(within(section).getByText("None: nobody is told about its runs.")).toBeTruthy();

    await user.click(screen.getByRole("button", { name: "Add notification" }));
    const first = screen.getByRole("group", { name: "Notification 1" });
    await user.selectOptions(within(first).getByLabelText("Event"), "on_success");
    await user.type(within(first).getByLabelText("URL"), "https://hooks.example.com/ml");
    await user.type(within(first).getByLabelText("Signing secret"), "ml-hook");
    expect(within(first).getByText("Success → webhook (hooks.example.com)")).toBeTruthy();

    await user.click(screen.getByRole("button", { name: "Add notification" }));
    const second = screen.getByRole("group", { name: "Notification 2" });
    await user.selectOptions(within(second).getByLabelText("Event"), "on_success");
    await user.selectOptions(within(second).getByLabelText("Kind"), "slack");
    expect(within(second).queryByLabelText("Signing secret")).toBeNull();
    await user.type(within(second).getByLabelText("URL"), "http://example.com/x");

    expect(screen.queryByLabelText("Duration warning after")).toBeNull();
    await user.click(screen.getByRole("button", { name: "Add notification" }));
    const third = screen.getByRole("group", { name: "Notification 3" });
    await user.selectOptions(within(third).getByLabelText("Event"), "on_duration_warning");
    await user.selectOptions(within(third).getByLabelText("Kind"), "teams");
    await user.type(within(third).getByLabelText("URL"), "https://teams.example.com/flow");
    await user.type(screen.getByLabelText("Duration warning after"), "2");
    await user.click(screen.getByRole("checkbox", { name: "No alerts for cancelled runs" }));
    expect(screen.getByRole("checkbox", { name: "Only alert on the last attempt" })).toHaveProperty("checked", true);
    expect(screen.getByRole("checkbox", { name: "No alerts for skipped runs" })).toHaveProperty("checked", true);
    await user.type(screen.getByLabelText("Databricks job id"), "7");
    await user.type(screen.getByLabelText("Cron expression"), "30 1 * * *");
    await user.click(screen.getByRole("button", { name: "Schedule job" }));

    const url = within(second).getByLabelText("URL");
    await waitFor(() => expect(url.getAttribute("aria-invalid")).toBe("true"));
    expect(errorOf(url)).toBe(https);
    expect(document.activeElement).toBe(url);
    expect(url).toHaveProperty("value", "http://example.com/x");
    expect(within(first).getByLabelText("URL").getAttribute("aria-invalid")).toBeNull();
    expect(bodies[0]?.notifications).toEqual({
      on_start: [],
      on_success: [
        { kind: "webhook", url: "https://hooks.example.com/ml", secret_ref: "ml-hook" },
        { kind: "slack", url: "http://example.com/x" },
      ],
      on_failure: [],
      on_deadline_missed: [],
      on_duration_warning: [{ kind: "teams", url: "https://teams.example.com/flow" }],
      duration_warning_after: "PT2H",
      only_on_last_attempt: true,
      no_alert_for_skipped: true,
      no_alert_for_cancelled: false,
    });

    // Removing a destination clears the errors that were about the destinations' places.
    await user.click(within(first).getByRole("button", { name: "Remove notification 1" }));
    expect(screen.queryByRole("group", { name: "Notification 3" })).toBeNull();
    expect(within(screen.getByRole("group", { name: "Notification 1" })).getByLabelText("URL").getAttribute("aria-invalid")).toBeNull();
  });

  it("sends nothing while a destination has no URL", async () => {
    const bodies: Record<string, unknown>[] = [];
    renderForm(emptyForm("UTC"), bodies, () => json({}));
    const user = userEvent.setup();
    await user.click(screen.getByRole("button", { name: "Add notification" }));
    await user.click(screen.getByRole("button", { name: "Schedule job" }));
    const url = within(screen.getByRole("group", { name: "Notification 1" })).getByLabelText("URL");
    await waitFor(() => expect(url.getAttribute("aria-invalid")).toBe("true"));
    expect(errorOf(url)).toBe("Required: the URL to post to (https).");
    expect(bodies).toEqual([]);
  });

  it("round-trip on edit: each destination in its place, the threshold and the choices", async () => {
    const bodies: Record<string, unknown>[] = [];
    const read = job();
    renderForm(formFromJob(read), bodies, () => json({}));
    const user = userEvent.setup();
    const rows = [1, 2, 3].map((n) => screen.getByRole("group", { name: `Notification ${n}` }));
    expect(rows.map((r) => (within(r).getByLabelText("Event") as HTMLSelectElement).value)).toEqual(["on_failure", "on_failure", "on_duration_warning"]);
    expect(rows.map((r) => (within(r).getByLabelText("Kind") as HTMLSelectElement).value)).toEqual(["slack", "webhook", "teams"]);
    expect(within(rows[1] as HTMLElement).getByLabelText("Signing secret")).toHaveProperty("value", "ml-hook");
    expect(screen.getByLabelText("Duration warning after")).toHaveProperty("value", "90");
    expect(screen.getByLabelText("Duration warning after unit")).toHaveProperty("value", "minutes");
    await user.click(screen.getByRole("button", { name: "Schedule job" }));
    await waitFor(() => expect(bodies).toHaveLength(1));
    expect(bodies[0]?.notifications).toEqual({ ...read.notifications, duration_warning_after: "PT90M" });
  });
});

describe("a job's notifications on its page", () => {
  it("say who is told about what by host, and send a test whose results are announced", async () => {
    const sent: string[] = [];
    vi.stubGlobal("fetch", async (request: Request) => {
      sent.push(`${request.method} ${new URL(request.url).pathname}`);
      return json({
        items: [
          { event: "failure", kind: "slack", host: "hooks.slack.com", delivered: true, status: 200, error: null, ms: 41 },
          { event: "failure", kind: "webhook", host: "hooks.example.com", delivered: false, status: 503, error: "HTTP 503 Service Unavailable", ms: 12 },
          { event: "duration_warning", kind: "teams", host: "prod-1.westeurope.logic.azure.com", delivered: true, status: 202, error: null, ms: 80 },
        ],
      });
    });
    const user = userEvent.setup();
    wrap(<JobNotifications job={job()} />);
    const items = screen.getAllByRole("listitem").map((li) => li.textContent);
    expect(items).toEqual([
      "Failure → Slack (hooks.slack.com), webhook (hooks.example.com)",
      "Duration warning (still running after 90 minutes) → Teams (prod-1.westeurope.logic.azure.com)",
    ]);
    expect(document.body.textContent).not.toMatch(/SECRET|sig=|\/services\//);
    expect(screen.getByText(/Skipped and cancelled runs tell nobody/)).toBeTruthy();

    await user.click(screen.getByRole("button", { name: "Send test notification" }));
    const results = await screen.findByRole("list", { name: "Test results" });
    expect(sent).toEqual([`POST /api/jobs/${JOB}/notifications/test`]);
    const status = results.closest("[role=status]") as HTMLElement;
    expect(within(status).getByText("Sent a test to 3 destinations: 2 delivered, 1 failed.")).toBeTruthy();
    expect(within(results).getAllByRole("listitem").map((li) => li.textContent)).toEqual([
      "Slack (hooks.slack.com): delivered, HTTP 200 in 41 ms",
      "webhook (hooks.example.com): failed, HTTP 503 Service Unavailable after 12 ms",
      "Teams (prod-1.westeurope.logic.azure.com): delivered, HTTP 202 in 80 ms",
    ]);
  });

  it("say that nobody is told, with no test to send; a refused test shows the server's reason", async () => {
    wrap(<JobNotifications job={job({ notifications: null })} />);
    expect(screen.getByText(/None: nobody is told about its runs/)).toBeTruthy();
    expect(screen.queryByRole("button", { name: "Send test notification" })).toBeNull();
    cleanup();

    vi.stubGlobal("fetch", async () => problem(409, `job ${JOB} has no notification destinations: set its \`notifications\` first`));
    const user = userEvent.setup();
    wrap(<JobNotifications job={job()} />);
    await user.click(screen.getByRole("button", { name: "Send test notification" }));
    expect((await screen.findByRole("alert")).textContent).toMatch(/^Refused \(HTTP 409\): job .* has no notification destinations/);
  });
});

describe("a run's notifications", () => {
  it("list each notice: event, kind and host, its state in words, when due, and its tries", () => {
    const at = "2026-06-01T12:00:00Z";
    const notices: Notice[] = [
      {
        id: "success1.0",
        event: "success",
        attempt: 1,
        kind: "webhook",
        destination: 0,
        host: "127.0.0.1",
        state: "delivered",
        due_at: at,
        tries: [{ at, status: 200, error: null, ms: 9 }],
      },
      {
        id: "success1.1",
        event: "success",
        attempt: 1,
        kind: "slack",
        destination: 1,
        host: "hooks.slack.com",
        state: "pending",
        due_at: "2026-06-01T12:00:15Z",
        tries: [{ at, status: 503, error: "HTTP 503 Service Unavailable", ms: 14 }],
      },
      {
        id: "duration_warning1.0",
        event: "duration_warning",
        attempt: 1,
        kind: "teams",
        destination: 0,
        host: "x.logic.azure.com",
        state: "not_needed",
        due_at: at,
        tries: [],
      },
    ];
    wrap(
      <>
        <h2 id="notifications-heading">Notifications</h2>
        <RunNotices notices={notices} />
      </>,
    );
    expect(screen.getByText("3 notifications: 1 delivered, 1 pending, 1 not needed.")).toBeTruthy();
    const table = screen.getByRole("table", { name: "Notifications" });
    const rows = within(table).getAllByRole("row").slice(1);
    const cells = (row: HTMLElement) => [...row.querySelectorAll("th, td")].map((c) => c.textContent ?? "");
    const [delivered, pending, notNeeded] = rows.map((r) => cells(r));
    expect(delivered?.slice(0, 3)).toEqual(["Success", "webhook (127.0.0.1)", "Delivered"]);
    expect(delivered?.[4]).toMatch(/^Jun 1, 2026, \d+:00:00 [AP]M .*: delivered, HTTP 200, 9 ms$/);
    expect(pending?.slice(0, 3)).toEqual(["Success", "Slack (hooks.slack.com)", "Pendingtried 1 time, will try again"]);
    expect(pending?.[4]).toMatch(/: HTTP 503 Service Unavailable, 14 ms$/);
    expect(notNeeded?.slice(2)).toEqual(["Not neededthe run ended in time", "—", "none yet"]);
  });
});
