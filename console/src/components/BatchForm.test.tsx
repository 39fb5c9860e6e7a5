import { cleanup, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Route } from "react-router-dom";
import { afterEach, describe, expect, it, vi } from "vitest";

import { TemplatePage } from "../pages/TemplatePage";
import { renderAt as renderRoutes } from "../test/render";
import { json, PARAMS, stubApi, template } from "../test/templates";

// train-model with a choice, a float and an int, and a task that does not use them
const TEMPLATE = template({
  description: "",
  task: { kind: "databricks_job", job_id: 123, parameters: {} },
  parameters: PARAMS.slice(0, 3),
});

const stub = (answer: (body: Record<string, unknown>) => Response) =>
  stubApi({ "/api/templates/train-model": TEMPLATE }, "/api/batches", answer);

const renderAt = (path: string) =>
  renderRoutes(
    path,
    <>
      <Route path="/templates/:name" element={<TemplatePage />} />
      <Route path="/batches/:batchId" element={<p>batch page</p>} />
    </>,
  );

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("Run a batch", () => {
  it("is a tab of the template's page", async () => {
    stub(() => json(500, {}));
    renderAt("/templates/train-model");
    await screen.findByRole("form", { name: "Create job from template" });
    await userEvent.click(screen.getByRole("tab", { name: "Run a batch" }));
    expect(screen.getByRole("tab", { name: "Run a batch" }).getAttribute("aria-selected")).toBe("true");
    expect(screen.getByRole("form", { name: "Run a batch" })).toBeTruthy();
    expect(screen.queryByRole("form", { name: "Create job from template" })).toBeNull();
  });

  it("counts the grid live, shows the server's errors at each parameter, and opens the batch", async () => {
    const user = userEvent.setup();
    let refuse = true;
    const bodies = stub(() =>
      refuse
        ? json(422, { title: "Invalid", errors: { "grid.epochs.1": "must be an integer", "parameters.market": "is required" } }, "application/problem+json")
        : json(201, { batch_id: "b1", name: "train-model", size: 4 }),
    );
    renderAt("/templates/train-model?run=batch");
    const form = await screen.findByRole("form", { name: "Run a batch" });
    const rate = within(form).getByRole("group", { name: "learning_rate" });
    await user.click(within(rate).getByLabelText("Sweep"));
    const rateValues = within(rate).getByLabelText("learning_rate values");
    await user.clear(rateValues);
    await user.type(rateValues, "0.1, 0.01");
    const epochs = within(form).getByRole("group", { name: "epochs" });
    await user.click(within(epochs).getByLabelText("Sweep"));
    const epochValues = within(epochs).getByLabelText("epochs values");
    await user.clear(epochValues);
    await user.type(epochValues, "5, 7.5");
    expect(form.querySelector(".point-count")?.textContent).toBe("2 × 2 = 4 points");

    await user.click(within(form).getByRole("button", { name: "Run batch" }));
    await waitFor(() => expect(epochValues.getAttribute("aria-invalid")).toBe("true"));
    const errorOf = (el: HTMLElement) => document.getElementById(el.getAttribute("aria-describedby")!.split(" ")[0]!)?.textContent;
    expect(errorOf(epochValues)).toBe("7.5: must be an integer");
    const market = within(form).getByLabelText("market value");
    expect(errorOf(market)).toBe("is required");
    expect(bodies[0]).toEqual({
      template: "train-model",
      version: 2,
      parameters: {},
      grid: { learning_rate: [0.1, 0.01], epochs: [5, 7.5] },
      execution_mode: "parallel",
      max_parallel: 10,
    });

    refuse = false;
    await user.selectOptions(market, "de");
    await user.clear(epochValues);
    await user.type(epochValues, "5, 10");
    await user.click(within(form).getByRole("button", { name: "Run batch" }));
    expect(await screen.findByText("batch page")).toBeTruthy();
    expect(bodies[1]).toMatchObject({ parameters: { market: "de" }, grid: { epochs: [5, 10] } });
  });

  it("refuses more than 1,000 points before asking", async () => {
    const user = userEvent.setup();
    const bodies = stub(() => json(500, {}));
    renderAt("/templates/train-model?run=batch");
    const form = await screen.findByRole("form", { name: "Run a batch" });
    const fill = async (name: string, from: string, to: string) => {
      const group = within(form).getByRole("group", { name });
      await user.click(within(group).getByLabelText("Sweep"));
      await user.type(within(group).getByLabelText("From"), from);
      await user.type(within(group).getByLabelText("To"), to);
      await user.type(within(group).getByLabelText("Step"), "1");
      await user.click(within(group).getByRole("button", { name: "Fill values" }));
    };
    await fill("epochs", "1", "1001"); // the helper itself refuses more than 1,000 values
    expect(within(form).getByRole("alert").textContent).toContain("That is 1,001 values");
    await user.clear(within(form).getByLabelText("To"));
    await user.type(within(form).getByLabelText("To"), "100");
    await user.click(within(form).getByRole("button", { name: "Fill values" }));
    await fill("learning_rate", "1", "11");
    expect(form.querySelector(".point-count")?.textContent).toContain("11 × 100 = 1,100 points — more than 1,000");
    await user.click(within(form).getByRole("button", { name: "Run batch" }));
    expect((await within(form).findByRole("alert")).textContent).toContain("The grid has 1,100 points");
    expect(bodies).toEqual([]);
  });

  it("sends the same batch again under the same Idempotency-Key, so a retry starts nothing twice", async () => {
    const user = userEvent.setup();
    const keys: (string | null)[] = [];
    vi.stubGlobal("fetch", async (request: Request) => {
      const path = new URL(request.url).pathname;
      if (path === "/api/templates/train-model") return json(200, TEMPLATE);
      if (path !== "/api/batches") return json(404, { detail: path });
      keys.push(request.headers.get("Idempotency-Key"));
      return keys.length === 1
        ? json(503, { title: "Service unavailable", detail: "storage is busy" }, "application/problem+json")
        : json(201, { batch_id: "b1", name: "train-model", size: 1 });
    });
    renderAt("/templates/train-model?run=batch");
    const form = await screen.findByRole("form", { name: "Run a batch" });
    await user.selectOptions(within(form).getByLabelText("market value"), "de");
    await user.click(within(form).getByRole("button", { name: "Run batch" }));
    await screen.findByText(/storage is busy/);
    await user.click(within(form).getByRole("button", { name: "Run batch" }));
    await screen.findByText("batch page");
    expect(keys).toHaveLength(2);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(keys[1]).toBe(keys[0]);
  });
});
