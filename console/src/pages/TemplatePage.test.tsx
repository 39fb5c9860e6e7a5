import { cleanup, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Route } from "react-router-dom";
import { afterEach, describe, expect, it, vi } from "vitest";

import { renderAt as renderRoutes } from "../test/render";
import { json, stubApi, TEMPLATE } from "../test/templates";
import { TemplatePage } from "./TemplatePage";
import { TemplatesPage } from "./TemplatesPage";

const stub = (schedule: (body: Record<string, unknown>) => Response) =>
  stubApi(
    {
      "/api/templates": { items: [TEMPLATE] },
      "/api/templates/train-model": TEMPLATE,
      "/api/schedules/preview": { timezone: "UTC", fire_times: [] },
    },
    "/api/jobs/schedule",
    schedule,
  );

const renderAt = (path: string) =>
  renderRoutes(
    path,
    <>
      <Route path="/templates" element={<TemplatesPage />} />
      <Route path="/templates/:name" element={<TemplatePage />} />
      <Route path="/jobs/:jobId" element={<p>job page</p>} />
    </>,
  );

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("templates", () => {
  it("are listed with their parameter count and version, linked", async () => {
    stub(() => json(500, {}));
    renderAt("/templates");
    const table = await screen.findByRole("table", { name: "Templates" });
    const row = within(table).getByRole("row", { name: /train-model/ });
    expect(within(row).getByRole("link", { name: "train-model" }).getAttribute("href")).toBe("/templates/train-model");
    expect(row.textContent).toContain("Model training");
    expect(within(row).getAllByRole("cell")[2]!.textContent).toBe("5");
    expect(row.textContent).toContain("v2");
  });

  it("an empty list says how to make one", async () => {
    vi.stubGlobal("fetch", async () => json(200, { items: [] }));
    renderAt("/templates");
    expect(await screen.findByText("No templates yet.")).toBeTruthy();
  });
});

describe("a template's job form", () => {
  it("is generated from the parameters' types, with the defaults filled in", async () => {
    stub(() => json(500, {}));
    renderAt("/templates/train-model");
    const form = await screen.findByRole("form", { name: "Create job from template" });
    const market = within(form).getByLabelText("market") as HTMLSelectElement;
    expect(market.tagName).toBe("SELECT");
    expect(market.required).toBe(true);
    expect([...market.options].map((o) => o.text)).toEqual(["Choose…", "de", "fr", "uk"]);
    const epochs = within(form).getByLabelText("epochs") as HTMLInputElement;
    expect([epochs.type, epochs.step, epochs.value]).toEqual(["number", "1", "10"]);
    const rate = within(form).getByLabelText("learning_rate") as HTMLInputElement;
    expect([rate.type, rate.step, rate.value]).toEqual(["number", "any", "0.001"]);
    const full = within(form).getByLabelText("full_refresh") as HTMLInputElement;
    expect([full.type, full.checked]).toEqual(["checkbox", false]);
    const note = within(form).getByLabelText("note") as HTMLInputElement;
    expect([note.type, note.value, note.required]).toEqual(["text", "", false]);
    // the parameters table and the task in words
    const params = screen.getByRole("table", { name: "Parameters" });
    expect(within(params).getByRole("row", { name: /market/ }).textContent).toContain("required");
    expect(screen.getByText(/Databricks job 123 with market=\{\{params.market\}\}/)).toBeTruthy();
  });

  it("sends typed values, shows each refused parameter at its field, then opens the new job", async () => {
    let refuse = true;
    const bodies = stub(() =>
      refuse
        ? json(
            422,
            { title: "Invalid input", status: 422, detail: "the parameters do not fit", errors: { "parameters.market": "is required", "parameters.epochs": "must be an integer" } },
            "application/problem+json",
          )
        : json(201, { job_id: "job-1", message: "ok", status: "ACTIVE", next_fire_at: null, job: {} }),
    );
    const user = userEvent.setup();
    renderAt("/templates/train-model");
    const form = await screen.findByRole("form", { name: "Create job from template" });
    await user.type(within(form).getByLabelText("Name"), "churn-de");
    await user.click(within(form).getByLabelText("On a schedule")); // no schedule
    const epochs = within(form).getByLabelText("epochs");
    await user.clear(epochs);
    await user.type(epochs, "2.5");
    await user.click(within(form).getByLabelText("full_refresh"));
    await user.click(within(form).getByRole("button", { name: "Create job" }));

    await waitFor(() => expect(within(form).getByLabelText("market").getAttribute("aria-invalid")).toBe("true"));
    expect(bodies[0]).toEqual({
      template: "train-model",
      version: 2,
      parameters: { learning_rate: 0.001, epochs: 2.5, full_refresh: true },
      name: "churn-de",
      schedule: null,
    });
    const describedBy = (label: string) => within(form).getByLabelText(label).getAttribute("aria-describedby")!.split(" ")[0]!;
    expect(document.getElementById(describedBy("market"))!.textContent).toBe("is required");
    expect(document.getElementById(describedBy("epochs"))!.textContent).toBe("must be an integer");
    expect(within(form).queryByRole("alert")).toBeNull(); // every error has its field
    await waitFor(() => expect(document.activeElement).toBe(within(form).getByLabelText("market")));

    refuse = false;
    await user.selectOptions(within(form).getByLabelText("market"), "fr");
    await user.clear(epochs);
    await user.type(epochs, "20");
    await user.click(within(form).getByRole("button", { name: "Create job" }));
    expect(await screen.findByText("job page")).toBeTruthy();
    expect(bodies[1]).toMatchObject({ parameters: { market: "fr", learning_rate: 0.001, epochs: 20, full_refresh: true } });
  });

  it("puts what has no field of its own in the alert", async () => {
    stub(() =>
      json(422, { title: "Invalid input", status: 422, detail: "x", errors: { "task.notebook_path": "too long" } }, "application/problem+json"),
    );
    const user = userEvent.setup();
    renderAt("/templates/train-model");
    const form = await screen.findByRole("form", { name: "Create job from template" });
    await user.type(within(form).getByLabelText("Name"), "churn-de");
    await user.selectOptions(within(form).getByLabelText("market"), "de");
    await user.click(within(form).getByLabelText("On a schedule"));
    await user.click(within(form).getByRole("button", { name: "Create job" }));
    expect((await within(form).findByRole("alert")).textContent).toContain("task.notebook_path: too long");
  });

  it("asks for the job's name before sending anything", async () => {
    const bodies = stub(() => json(500, {}));
    const user = userEvent.setup();
    renderAt("/templates/train-model");
    const form = await screen.findByRole("form", { name: "Create job from template" });
    await user.click(within(form).getByRole("button", { name: "Create job" }));
    await waitFor(() => expect(within(form).getByLabelText("Name").getAttribute("aria-invalid")).toBe("true"));
    expect(bodies).toEqual([]);
  });
});
