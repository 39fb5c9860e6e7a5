import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { cleanup, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter } from "react-router-dom";
import { afterEach, describe, expect, it, vi } from "vitest";

import type { Pool } from "../api/types";
import { PoolsPage } from "../pages/PoolsPage";
import { checkPool, emptyPool, poolBody } from "./PoolForm";
import { StatusProvider } from "./Status";

const json = (status: number, body: unknown, type = "application/json") =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": type } });
const wait = (length: number, oldest = 0) => ({ length, avg_wait: oldest, oldest_wait: oldest });
const pool = (over: Partial<Pool>): Pool => ({
  name: "default",
  slots: null,
  tenant_limit: null,
  policy: "default",
  used: 0,
  running: 0,
  pending: 0,
  queue_length: 0,
  queues: { urgent: wait(0), high: wait(0), normal: wait(0), low: wait(0) },
  updated_at: null,
  updated_by: null,
  ...over,
});
const GPU = pool({ name: "gpu", slots: 1, used: 1, running: 1, pending: 1, queue_length: 2, queues: { urgent: wait(0), high: wait(0), normal: wait(1, 150), low: wait(0) } });

function stub(put: (request: Request) => Promise<Response> | Response, admin = true) {
  const sent: string[] = [];
  vi.stubGlobal("fetch", async (request: Request) => {
    const path = new URL(request.url).pathname;
    sent.push(`${request.method} ${path}`);
    if (path === "/api/me") return json(200, { actor: { id: "dev", name: "Dev" }, tenants: ["default"], admin: false, pools_admin: admin });
    if (path === "/api/pools") return json(200, { items: [pool({}), GPU] });
    return put(request);
  });
  return sent;
}

function renderPage() {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={client}>
      <MemoryRouter>
        <StatusProvider>
          <PoolsPage />
        </StatusProvider>
      </MemoryRouter>
    </QueryClientProvider>,
  );
}

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("the pools page", () => {
  it("lists each pool's slots, use and waits per priority", async () => {
    stub(() => json(404, {}));
    renderPage();
    const table = await screen.findByRole("table", { name: "Pools" });
    const rows = within(table).getAllByRole("row");
    expect(rows[1]?.textContent).toContain("unbounded");
    const gpu = within(table).getByRole("rowheader", { name: "gpu" }).closest("tr") as HTMLElement;
    const cells = within(gpu).getAllByRole("cell").map((c) => c.textContent);
    expect(cells.slice(0, 6)).toEqual(["1", "none", "default", "1/1", "1", "1"]);
    expect(cells[6]).toBe("Normal: 1 · oldest 2m 30s");
    expect(within(rows[1] as HTMLElement).getAllByRole("cell")[6]?.textContent).toBe("none");
  });

  it("shows the server's field errors beside the pool form's fields and keeps the input", async () => {
    stub(() =>
      json(422, { title: "Invalid input", status: 422, detail: "the request is not valid", errors: { slots: "Input should be less than or equal to 1000", policy: "bad" } }, "application/problem+json"),
    );
    const user = userEvent.setup();
    renderPage();
    await user.type(await screen.findByLabelText("Pool name"), "gpu-large");
    await user.type(screen.getByLabelText("Slots"), "5000");
    await user.click(screen.getByRole("button", { name: "Save pool" }));
    const slots = screen.getByLabelText("Slots");
    await waitFor(() => expect(slots.getAttribute("aria-invalid")).toBe("true"));
    const errorId = slots.getAttribute("aria-describedby")?.split(" ")[0] ?? "";
    expect(document.getElementById(errorId)?.textContent).toBe("Input should be less than or equal to 1000");
    expect(screen.getByLabelText("Policy").getAttribute("aria-invalid")).toBe("true");
    expect(slots).toHaveProperty("value", "5000");
    expect(screen.getByLabelText("Pool name")).toHaveProperty("value", "gpu-large");
    await waitFor(() => expect(document.activeElement).toBe(slots));
  });

  it("refuses a name that cannot be a pool's before asking, and says a 403 plainly", async () => {
    const sent = stub(() =>
      json(403, { title: "Forbidden", status: 403, detail: "only a pools admin may change pools" }, "application/problem+json"),
    );
    const user = userEvent.setup();
    renderPage();
    await user.type(await screen.findByLabelText("Pool name"), "GPU Pool");
    await user.click(screen.getByRole("button", { name: "Save pool" }));
    await waitFor(() => expect(screen.getByLabelText("Pool name").getAttribute("aria-invalid")).toBe("true"));
    expect(sent.filter((s) => s.startsWith("PUT"))).toEqual([]);
    await user.clear(screen.getByLabelText("Pool name"));
    await user.type(screen.getByLabelText("Pool name"), "gpu");
    await user.click(screen.getByRole("button", { name: "Save pool" }));
    expect((await screen.findByRole("alert")).textContent).toBe("You may not do this: only a pools admin may change pools");
    expect(sent).toContain("PUT /api/pools/gpu");
  });

  it("fills the form from a pool's Change button and saves it, then refreshes", async () => {
    const bodies: unknown[] = [];
    const sent = stub(async (request) => {
      bodies.push(await request.json());
      return json(200, { ...GPU, slots: 3 });
    });
    const user = userEvent.setup();
    renderPage();
    await user.click(await screen.findByRole("button", { name: "Change gpu" }));
    expect(screen.getByLabelText("Pool name")).toHaveProperty("value", "gpu");
    await waitFor(() => expect(document.activeElement).toBe(screen.getByLabelText("Slots")));
    await user.clear(screen.getByLabelText("Slots"));
    await user.type(screen.getByLabelText("Slots"), "3");
    await user.click(screen.getByRole("button", { name: "Save pool" }));
    await waitFor(() => expect(screen.getByRole("status").textContent).toBe("Changed pool gpu"));
    expect(bodies).toEqual([{ slots: 3, tenant_limit: null, policy: "default" }]);
    expect(sent.filter((s) => s === "GET /api/pools").length).toBeGreaterThan(1);
  });

  it("offers no form to someone who may not change pools", async () => {
    stub(() => json(404, {}), false);
    renderPage();
    expect(await screen.findByText("Only a pools admin may create or change pools.")).toBeTruthy();
    expect(screen.queryByLabelText("Pool name")).toBeNull();
    expect(screen.queryByRole("button", { name: "Change gpu" })).toBeNull();
  });
});

describe("the pool form's body", () => {
  it("sends empty as null (unbounded, no limit) and checks the name", () => {
    expect(poolBody({ ...emptyPool(), name: "gpu" })).toEqual({ slots: null, tenant_limit: null, policy: "default" });
    expect(poolBody({ name: "gpu", slots: " 4 ", tenantLimit: "2", policy: "edf" })).toEqual({ slots: 4, tenant_limit: 2, policy: "edf" });
    expect(checkPool({ ...emptyPool(), name: "gpu-1" })).toEqual({});
    expect(checkPool({ ...emptyPool(), name: "-gpu" }).name).toMatch(/Lowercase/);
    expect(checkPool(emptyPool()).name).toBe("Give the pool a name.");
  });
});
