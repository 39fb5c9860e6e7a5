import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { cleanup, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import type { ReactNode } from "react";
import { MemoryRouter } from "react-router-dom";
import { afterEach, describe, expect, it, vi } from "vitest";

import { api, call } from "../api/client";
import type { Run } from "../api/types";
import { bodyOf, emptyForm } from "../lib/form";
import { JobForm } from "./JobForm";
import { RunsTable } from "./Runs";
import { StatusProvider } from "./Status";
import { TriggerForm } from "./Triggers";

const JOB = "01KAB3X9M2Q8Z0C7D5E4F6G1H2";
const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
const problem = (status: number, detail: string, errors: Record<string, string> = {}) =>
  new Response(JSON.stringify({ type: "urn:x", title: "t", status, detail, code: "c", errors }), {
    status,
    headers: { "Content-Type": "application/problem+json" },
  });

function run(overrides: Partial<Run>): Run {
  return {
    run_id: `${JOB}_h-1795671000000-abc`,
    job_id: JOB,
    tenant: "default",
    run_key: "h-1795671000000-abc",
    trigger: "webhook",
    scheduled_for: "2026-12-01T10:00:00Z",
    state: "SCHEDULED",
    reason: null,
    attempt: 1,
    job_version: 1,
    created_at: "2026-12-01T10:00:00Z",
    updated_at: "2026-12-01T10:00:00Z",
    transitions: {},
    slots: 1,
    ...overrides,
  } as Run;
}

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

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("the trigger dialog's form", () => {
  it("checks the parameters in the browser, then calls the webhook once per key and shows the run", async () => {
    const sent: { key: string | null; body: unknown }[] = [];
    vi.stubGlobal("fetch", async (request: Request) => {
      sent.push({ key: request.headers.get("Idempotency-Key"), body: await request.json() });
      const answer = run({ cause: { kind: "webhook", idempotency_key: "order-42", payload: { model: "churn" } } });
      return json(answer, 202, { "Idempotent-Replayed": sent.length > 1 ? "true" : "false", Location: `/api/runs/${answer.run_id}` });
    });
    const user = userEvent.setup();
    wrap(<TriggerForm job={{ job_id: JOB, name: "score", status: "ACTIVE" }} onClose={() => undefined} />);
    const key = screen.getByLabelText("Idempotency key") as HTMLInputElement;
    expect(key.value).toMatch(/^[0-9a-f-]{36}$/);
    const parameters = screen.getByLabelText("Parameters (JSON object)");
    await user.type(parameters, "[[1]");
    await user.click(screen.getByRole("button", { name: "Trigger run" }));
    await waitFor(() => expect(parameters.getAttribute("aria-invalid")).toBe("true"));
    expect(sent).toHaveLength(0);

    await user.clear(parameters);
    await user.type(parameters, '{{"model": "churn", "full": true}');
    await user.clear(key);
    await user.type(key, "order-42");
    await user.click(screen.getByRole("button", { name: "Trigger run" }));
    const done = await screen.findByText(/Run started/);
    expect(sent).toEqual([{ key: "order-42", body: { model: "churn", full: true } }]);
    const status = done.closest("[role=status]") as HTMLElement;
    expect(within(status).getByRole("link", { name: "View run" }).getAttribute("href")).toBe(`/jobs/${JOB}/runs/${JOB}_h-1795671000000-abc`);

    await user.click(screen.getByRole("button", { name: "Trigger run" }));
    expect(await screen.findByText(/No new run:/)).toBeTruthy();
    expect(sent).toHaveLength(2);
  });

  it("shows the server's refusal: a 409's detail, a 422's errors at their fields", async () => {
    const answers = [
      problem(409, "job x is paused: the call was not recorded"),
      problem(422, "the request is not valid", { "Idempotency-Key": "String should have at most 255 characters" }),
    ];
    vi.stubGlobal("fetch", async () => answers.shift());
    const user = userEvent.setup();
    wrap(<TriggerForm job={{ job_id: JOB, name: "score", status: "PAUSED" }} onClose={() => undefined} />);
    await user.click(screen.getByRole("button", { name: "Trigger run" }));
    expect((await screen.findByRole("alert")).textContent).toBe("Refused (HTTP 409): job x is paused: the call was not recorded");
    await user.click(screen.getByRole("button", { name: "Trigger run" }));
    const key = screen.getByLabelText("Idempotency key");
    await waitFor(() => expect(key.getAttribute("aria-invalid")).toBe("true"));
    const errorId = key.getAttribute("aria-describedby")?.split(" ")[0] ?? "";
    expect(document.getElementById(errorId)?.textContent).toBe("String should have at most 255 characters");
    expect(screen.getByRole("alert").textContent).toMatch(/HTTP 422/);
  });
});

describe("the job form's triggers", () => {
  it("adds a file arrival trigger and a webhook, and shows the server's error at the container", async () => {
    const bodies: Record<string, unknown>[] = [];
    vi.stubGlobal("fetch", async (request: Request) => {
      const path = new URL(request.url).pathname;
      if (path === "/api/pools") return json({ items: [] });
      if (path === "/api/schedules/preview") return json({ timezone: "UTC", fire_times: [] });
      bodies.push((await request.json()) as Record<string, unknown>);
      return problem(422, "the request is not valid", {
        "triggers.0.file_arrival.container": "String should match pattern '^[a-z0-9](?:[a-z0-9]|-[a-z0-9]){2,62}$'",
      });
    });
    const user = userEvent.setup();
    wrap(
      <JobForm
        initial={emptyForm("UTC")}
        submitLabel="Schedule job"
        onSubmit={async (form) => {
          await call(api.POST("/api/jobs/schedule", { body: bodyOf(form) as never }));
        }}
      />,
    );
    await user.click(screen.getByRole("checkbox", { name: "On a schedule" }));
    expect(screen.getByText(/No schedule and no triggers/)).toBeTruthy();
    await user.click(screen.getByRole("button", { name: "Add “When files arrive”" }));
    await user.click(screen.getByRole("button", { name: "Add “When called (webhook)”" }));
    expect(screen.queryByRole("button", { name: "Add “When called (webhook)”" })).toBeNull();
    await user.type(screen.getByLabelText("Container"), "Landing_Zone");
    await user.type(screen.getByLabelText("Prefix"), "sales/");
    await user.type(screen.getByLabelText("Suffix"), ".parquet");
    const wait = screen.getByLabelText("Wait after last change");
    await user.clear(wait);
    await user.type(wait, "90");
    await user.selectOptions(screen.getByLabelText("Wait after last change unit"), "seconds");
    await user.clear(screen.getByLabelText("Minimum time between runs"));
    await user.type(screen.getByLabelText("Minimum time between runs"), "5");
    expect(screen.getByText(/When a blob is created in Landing_Zone\/sales\/\*\.parquet, waiting 90 seconds after the last file/)).toBeTruthy();
    await user.click(screen.getByRole("radio", { name: "Record them as skipped runs" }));
    await user.type(screen.getByLabelText("Databricks job id"), "7");
    await user.click(screen.getByRole("button", { name: "Schedule job" }));

    const container = screen.getByLabelText("Container");
    await waitFor(() => expect(container.getAttribute("aria-invalid")).toBe("true"));
    const errorId = container.getAttribute("aria-describedby")?.split(" ")[0] ?? "";
    expect(document.getElementById(errorId)?.textContent).toMatch(/^Not a container name: 3 to 63 lowercase letters/);
    expect(document.activeElement).toBe(container);
    expect(bodies[0]).toMatchObject({
      schedule: null,
      record_skipped_while_paused: true,
      triggers: [
        {
          kind: "file_arrival",
          container: "Landing_Zone",
          prefix: "sales/",
          suffix: ".parquet",
          account: null,
          wait_after_last_change: "PT90S",
          min_time_between_triggers: "PT5M",
        },
        { kind: "webhook" },
      ],
    });
  });
});

describe("why a run started, in the runs table", () => {
  it("names the cause and shows its details on demand", async () => {
    vi.stubGlobal("fetch", async () => json({ name: "prepare" }));
    const user = userEvent.setup();
    const url = "http://127.0.0.1:10000/devstoreaccount1/landing/sales/a.csv";
    wrap(
      <RunsTable
        label="Runs"
        jobName="load"
        runs={[
          run({ cause: { kind: "webhook", idempotency_key: "order-42", payload: { model: "churn", full: "true" } } }),
          run({
            run_id: `${JOB}_f-1`,
            trigger: "file_arrival",
            cause: { kind: "file_arrival", files: [{ url, event_id: "ev-1", at: "2026-12-01T09:59:00Z" }] },
          }),
          run({ run_id: `${JOB}_a-1`, trigger: "after", cause: { kind: "after", runs: { J1: "J1_s-1" } } }),
          run({ run_id: `${JOB}_s-1`, trigger: "schedule", cause: null }),
        ]}
      />,
    );
    const rows = screen.getAllByRole("row");
    expect(within(rows[1] as HTMLElement).getByText("Webhook order-42")).toBeTruthy();
    expect(within(rows[2] as HTMLElement).getByText("1 file")).toBeTruthy();
    await waitFor(() => expect((rows[3] as HTMLElement).querySelector(".origin")?.textContent).toMatch(/^After prepare▸ Details of the run/));
    expect(within(rows[4] as HTMLElement).getByText("Schedule")).toBeTruthy();
    expect(within(rows[4] as HTMLElement).queryByRole("button", { name: /Details/ })).toBeNull();

    const details = within(rows[1] as HTMLElement).getByRole("button", { name: /^Details of the run/ });
    await user.click(details);
    expect(details.getAttribute("aria-expanded")).toBe("true");
    const payload = screen.getByRole("table", { name: "Payload" });
    expect(within(payload).getAllByRole("row").map((r) => r.textContent)).toEqual(["ParameterValue", "modelchurn", "fulltrue"]);
    expect(screen.getByText("order-42", { selector: "code" })).toBeTruthy();

    await user.click(within(rows[2] as HTMLElement).getByRole("button", { name: /^Details of the run/ }));
    const files = screen.getByRole("table", { name: "Files" });
    expect(within(files).getByText(url)).toBeTruthy();
    expect(within(files).getByText("ev-1")).toBeTruthy();

    await user.click(within(rows[3] as HTMLElement).getByRole("button", { name: /^Details of the run/ }));
    const upstream = screen.getByRole("list", { name: "Upstream runs" });
    expect(within(upstream).getByRole("link", { name: "run s-1" }).getAttribute("href")).toBe("/jobs/J1/runs/J1_s-1");
  });
});
