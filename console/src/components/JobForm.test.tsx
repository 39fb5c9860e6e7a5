import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { cleanup, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";

import { api, call } from "../api/client";
import { bodyOf, emptyForm, type FormState } from "../lib/form";
import { JobForm } from "./JobForm";

const problem = (errors: Record<string, string>) =>
  new Response(JSON.stringify({ type: "urn:ml-scheduler:problem:invalid_input", title: "Invalid input", status: 422, detail: "the request is not valid", code: "invalid_input", errors }), {
    status: 422,
    headers: { "Content-Type": "application/problem+json" },
  });
const preview = () =>
  new Response(JSON.stringify({ timezone: "UTC", fire_times: [] }), { status: 200, headers: { "Content-Type": "application/json" } });

function renderForm(onSubmit: (form: FormState) => Promise<void>) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={client}>
      <JobForm initial={emptyForm("UTC")} submitLabel="Schedule job" onSubmit={onSubmit} />
    </QueryClientProvider>,
  );
}

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("the schedule form", () => {
  it("shows the server's field errors beside their fields and keeps what was typed", async () => {
    const sent: string[] = [];
    vi.stubGlobal("fetch", async (request: Request) => {
      sent.push(`${request.method} ${new URL(request.url).pathname}`);
      if (request.url.endsWith("/api/schedules/preview")) return preview();
      return problem({ "schedule.cron": "invalid cron expression '61 * * * *'", "task.job_id": "Input should be greater than 0" });
    });
    const user = userEvent.setup();
    renderForm(async (form) => {
      await call(api.POST("/api/jobs/schedule", { body: bodyOf(form) as never }));
    });
    await user.type(screen.getByLabelText("Name"), "churn");
    await user.type(screen.getByLabelText("Databricks job id"), "0");
    await user.type(screen.getByLabelText("Cron expression"), "61 * * * *");
    await user.click(screen.getByRole("button", { name: "Schedule job" }));

    const cron = screen.getByLabelText("Cron expression");
    await waitFor(() => expect(cron.getAttribute("aria-invalid")).toBe("true"));
    const errorId = cron.getAttribute("aria-describedby")?.split(" ")[0] ?? "";
    expect(document.getElementById(errorId)?.textContent).toBe("invalid cron expression '61 * * * *'");
    expect(screen.getByLabelText("Databricks job id").getAttribute("aria-invalid")).toBe("true");
    expect(screen.getByLabelText("Name")).toHaveProperty("value", "churn");
    expect(cron).toHaveProperty("value", "61 * * * *");
    expect(document.activeElement).toBe(screen.getByLabelText("Databricks job id"));
    expect(sent).toContain("POST /api/jobs/schedule");
  });

  it("sends nothing while the end is before the start, and still shows the schedule's own errors", async () => {
    const sent: string[] = [];
    vi.stubGlobal("fetch", async (request: Request) => {
      sent.push(new URL(request.url).pathname);
      return problem({ "schedule.cron": "invalid cron expression" });
    });
    const submit = vi.fn(async () => undefined);
    const user = userEvent.setup();
    renderForm(submit);
    await user.type(screen.getByLabelText("Cron expression"), "61 * * * *");
    await user.type(screen.getByLabelText("Start"), "2027-03-12T00:00");
    await user.type(screen.getByLabelText("End"), "2027-03-01T00:00");
    await user.click(screen.getByRole("button", { name: "Schedule job" }));
    await waitFor(() => expect(screen.getByLabelText("End").getAttribute("aria-invalid")).toBe("true"));
    expect(screen.getByLabelText("Cron expression").getAttribute("aria-invalid")).toBe("true");
    expect(submit).not.toHaveBeenCalled();
    // only the preview is asked (and the pools the form offers are read): nothing is saved
    expect(sent.every((path) => path === "/api/schedules/preview" || path === "/api/pools")).toBe(true);
  });

  it("adds, edits and removes parameter rows", async () => {
    vi.stubGlobal("fetch", async () => preview());
    const submitted: FormState[] = [];
    const user = userEvent.setup();
    renderForm(async (form) => {
      submitted.push(form);
    });
    await user.click(screen.getByRole("button", { name: "Add parameter" }));
    await user.click(screen.getByRole("button", { name: "Add parameter" }));
    const names = screen.getAllByLabelText("Parameter name");
    const values = screen.getAllByLabelText("Parameter value");
    await user.type(names[0] as HTMLElement, "run_date");
    await user.type(values[0] as HTMLElement, "today");
    await user.type(names[1] as HTMLElement, "gone");
    await user.click(screen.getAllByRole("button", { name: "Remove parameter" })[1] as HTMLElement);
    await user.click(screen.getByRole("button", { name: "Schedule job" }));
    await waitFor(() => expect(submitted).toHaveLength(1));
    expect((bodyOf(submitted[0] as FormState).task as { parameters: unknown }).parameters).toEqual({ run_date: "today" });
  });

  it("reads the cron expression in words as it is typed", async () => {
    vi.stubGlobal("fetch", async () => preview());
    const user = userEvent.setup();
    renderForm(async () => undefined);
    await user.type(screen.getByLabelText("Cron expression"), "30 2 * * *");
    expect(document.getElementById("cron-reading")?.textContent).toBe("At 02:30 AM");
  });

  it("offers the pools to choose from and shows an unknown pool's error beside the field", async () => {
    const bodies: Record<string, unknown>[] = [];
    vi.stubGlobal("fetch", async (request: Request) => {
      const path = new URL(request.url).pathname;
      if (path === "/api/pools")
        return new Response(
          JSON.stringify({
            items: [
              { name: "default", slots: null, tenant_limit: null, policy: "default", used: 0, running: 0, pending: 0, queue_length: 0, queues: {} },
              { name: "gpu", slots: 4, tenant_limit: 2, policy: "default", used: 3, running: 3, pending: 2, queue_length: 5, queues: {} },
            ],
          }),
          { status: 200, headers: { "Content-Type": "application/json" } },
        );
      if (path === "/api/schedules/preview") return preview();
      bodies.push((await request.json()) as Record<string, unknown>);
      return problem({ pool: "no pool named 'gpu'" });
    });
    const user = userEvent.setup();
    renderForm(async (form) => {
      await call(api.POST("/api/jobs/schedule", { body: bodyOf(form) as never }));
    });
    const pool = screen.getByLabelText("Pool");
    await waitFor(() => expect([...pool.querySelectorAll("option")].map((o) => o.value)).toEqual(["default", "gpu"]), { timeout: 5000 });
    await user.selectOptions(pool, "gpu");
    expect(screen.getByText("4 slots, 3 used, 2 waiting")).toBeTruthy();
    await user.clear(screen.getByLabelText("Slots"));
    await user.type(screen.getByLabelText("Slots"), "2");
    await user.type(screen.getByLabelText("Deadline"), "6");
    await user.click(screen.getByRole("button", { name: "Schedule job" }));
    await waitFor(() => expect(pool.getAttribute("aria-invalid")).toBe("true"));
    expect(bodies[0]).toMatchObject({ pool: "gpu", slots: 2, deadline: "PT6H" });
    const errorId = pool.getAttribute("aria-describedby")?.split(" ")[0] ?? "";
    expect(document.getElementById(errorId)?.textContent).toBe("no pool named 'gpu'");
  });
});
