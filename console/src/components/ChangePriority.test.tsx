import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { cleanup, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";

import { ChangePriority } from "./ChangePriority";
import { StatusProvider } from "./Status";

const json = (status: number, body: unknown, type = "application/json") =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": type } });
const problem = (status: number, detail: string, errors: Record<string, string>) =>
  json(status, { type: "urn:ml-scheduler:problem:x", title: "x", status, detail, errors }, "application/problem+json");

const RUN = { run_id: "01KAB3X9M2Q8Z0C7D5E4F6G1H2_manual-1", priority: "normal" as const };

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

function renderButton() {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={client}>
      <StatusProvider>
        <ChangePriority run={RUN} what="nightly-churn" />
      </StatusProvider>
    </QueryClientProvider>,
  );
}

async function open() {
  const user = userEvent.setup();
  renderButton();
  await user.click(screen.getByRole("button", { name: "Change priority" }));
  const dialog = screen.getByRole("dialog", { name: "Change priority: nightly-churn" });
  return { user, dialog };
}

describe("the change-priority dialog", () => {
  it("sends nothing without a reason, and says why beside the field", async () => {
    const fetch = vi.fn(async () => json(200, {}));
    vi.stubGlobal("fetch", fetch);
    const { user } = await open();
    await user.click(screen.getByRole("button", { name: "Save priority" }));
    const reason = screen.getByLabelText("Reason");
    await waitFor(() => expect(reason.getAttribute("aria-invalid")).toBe("true"));
    const errorId = reason.getAttribute("aria-describedby")?.split(" ")[0] ?? "";
    expect(document.getElementById(errorId)?.textContent).toMatch(/reason goes to the job's audit trail/);
    await waitFor(() => expect(document.activeElement).toBe(reason));
    expect(fetch).not.toHaveBeenCalled();
  });

  it("puts the priority and reason, announces the new place and closes", async () => {
    const sent: { method: string; path: string; body: unknown }[] = [];
    vi.stubGlobal("fetch", async (request: Request) => {
      sent.push({ method: request.method, path: new URL(request.url).pathname, body: await request.clone().json().catch(() => null) });
      return json(200, { ...RUN, priority: "urgent", state: "QUEUED", queue_position: 1 });
    });
    const { user, dialog } = await open();
    expect(screen.getByLabelText("Priority")).toHaveProperty("value", "urgent");
    await user.type(screen.getByLabelText("Reason"), "the demo is at noon");
    await user.click(screen.getByRole("button", { name: "Save priority" }));
    await waitFor(() => expect(dialog.hasAttribute("open")).toBe(false));
    expect(sent[0]).toEqual({
      method: "PUT",
      path: `/api/runs/${RUN.run_id}/priority`,
      body: { priority: "urgent", reason: "the demo is at noon" },
    });
    await waitFor(() => expect(screen.getByRole("status").textContent).toBe("nightly-churn: priority set to urgent, now at position 1"));
    expect(document.activeElement).toBe(screen.getByRole("button", { name: "Change priority" }));
  });

  it("explains a 409: the run no longer waits, and what it is now", async () => {
    vi.stubGlobal("fetch", async () =>
      problem(409, "run x is RUNNING: only a run waiting for a slot can change priority", { state: "RUNNING" }),
    );
    const { user, dialog } = await open();
    await user.selectOptions(screen.getByLabelText("Priority"), "high");
    await user.type(screen.getByLabelText("Reason"), "hurry");
    await user.click(screen.getByRole("button", { name: "Save priority" }));
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toMatch(/no longer waits for a slot \(it is RUNNING now\)/);
    expect(dialog.hasAttribute("open")).toBe(true);
    expect(screen.getByLabelText("Reason")).toHaveProperty("value", "hurry");
  });

  it("shows a 422's field errors beside their fields", async () => {
    vi.stubGlobal("fetch", async () => problem(422, "the request is not valid", { reason: "String should have at most 500 characters" }));
    const { user } = await open();
    await user.type(screen.getByLabelText("Reason"), "x");
    await user.click(screen.getByRole("button", { name: "Save priority" }));
    const reason = screen.getByLabelText("Reason");
    await waitFor(() => expect(reason.getAttribute("aria-invalid")).toBe("true"));
    const errorId = reason.getAttribute("aria-describedby")?.split(" ")[0] ?? "";
    expect(document.getElementById(errorId)?.textContent).toBe("String should have at most 500 characters");
  });
});
