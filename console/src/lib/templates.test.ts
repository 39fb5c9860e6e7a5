import { describe, expect, it } from "vitest";

import {
  checkInputs,
  initialInputs,
  inputKind,
  needInWords,
  offersNone,
  parameterValues,
  specOf,
  type Template,
  templateFieldErrors,
  typeInWords,
} from "./templates";
import { PARAMS, param } from "../test/templates";

describe("a parameter's input", () => {
  it("follows its type", () => {
    expect(inputKind("string")).toEqual({ element: "input", type: "text" });
    expect(inputKind("int")).toMatchObject({ element: "input", type: "number", step: "1" });
    expect(inputKind("float")).toMatchObject({ element: "input", type: "number", step: "any" });
    expect(inputKind("bool")).toEqual({ element: "checkbox" });
    expect(inputKind("enum")).toEqual({ element: "select" });
  });

  it("is described in words", () => {
    expect(typeInWords(PARAMS[0]!)).toBe("one of de, fr, uk");
    expect(typeInWords(PARAMS[2]!)).toBe("integer");
    expect(needInWords(PARAMS[0]!)).toBe("required");
    expect(needInWords(PARAMS[1]!)).toBe("default 0.001");
    expect(needInWords(PARAMS[3]!)).toBe("default false");
    expect(needInWords(PARAMS[4]!)).toBe("optional");
  });

  it("opens with the defaults filled in", () => {
    expect(initialInputs(PARAMS)).toEqual({ market: "", learning_rate: "0.001", epochs: "10", full_refresh: false, note: "" });
    const withDefault = param({ name: "m", type: "enum", options: [1, "1", true], default: "1" });
    expect(initialInputs([withDefault])).toEqual({ m: "1" }); // the option "1", not the number 1
    expect(initialInputs([param({ name: "b", type: "bool", default: true })])).toEqual({ b: true });
  });

  it("offers no value in a select only without a default", () => {
    expect(offersNone(PARAMS[0]!)).toBe(true);
    expect(offersNone(param({ name: "m", type: "enum", options: ["a"], default: "a" }))).toBe(false);
    expect(offersNone(PARAMS[2]!)).toBe(false);
  });
});

describe("the values sent", () => {
  it("are JSON typed: integers, numbers, booleans, the option itself", () => {
    const inputs = { market: "1", learning_rate: "0.0005", epochs: " 20 ", full_refresh: true, note: "hello" };
    expect(parameterValues(PARAMS, inputs)).toEqual({ market: "fr", learning_rate: 0.0005, epochs: 20, full_refresh: true, note: "hello" });
  });

  it("leave an empty input out so the default applies (or the server says it is required)", () => {
    const inputs = { market: "", learning_rate: "", epochs: "", full_refresh: false, note: "" };
    expect(parameterValues(PARAMS, inputs)).toEqual({ full_refresh: false });
  });

  it("keep an enum option's own type", () => {
    const p = param({ name: "n", type: "enum", options: [1, 2.5, true, "x"] });
    expect(parameterValues([p], { n: "0" })).toEqual({ n: 1 });
    expect(parameterValues([p], { n: "2" })).toEqual({ n: true });
    expect(parameterValues([p], { n: "3" })).toEqual({ n: "x" });
    expect(parameterValues([p], { n: "9" })).toEqual({});
  });

  it("send what does not convert as it is, for the server to name", () => {
    expect(parameterValues(PARAMS, { epochs: "2.5" })).toMatchObject({ epochs: 2.5 }); // "must be an integer"
    expect(parameterValues(PARAMS, { learning_rate: "fast" })).toMatchObject({ learning_rate: "fast" });
    expect(parameterValues(PARAMS, { epochs: "1e3" })).toMatchObject({ epochs: 1000 });
    expect(checkInputs(PARAMS, { learning_rate: "fast", epochs: "3" })).toEqual({ "param:learning_rate": "must be a number" });
    expect(checkInputs(PARAMS, initialInputs(PARAMS))).toEqual({});
  });

  it("keep a string's spaces", () => {
    expect(parameterValues(PARAMS, { note: "  a b " })).toMatchObject({ note: "  a b " });
  });
});

describe("the server's errors", () => {
  const shown = new Set(["param:market", "param:epochs", "name", "cron", "timezone"]);

  it("land at each parameter's field, the job's fields at theirs", () => {
    const errors = templateFieldErrors(
      { "parameters.market": "is required", "parameters.epochs": "must be an integer", name: "too long", "schedule.cron": "bad cron" },
      shown,
    );
    expect(errors).toEqual({ "param:market": "is required", "param:epochs": "must be an integer", name: "too long", cron: "bad cron" });
  });

  it("that have no field of their own go to the form's alert, named", () => {
    const errors = templateFieldErrors(
      { "parameters.depth": "is not a parameter of template 'x'", "task.notebook_path": "too long", template: "no such template" },
      shown,
    );
    expect(errors).toEqual({
      form: "depth: is not a parameter of template 'x'; task.notebook_path: too long; template: no such template",
    });
  });
});

it("a template's spec leaves out who made it and when", () => {
  const t = {
    name: "t",
    job_type: "other",
    task: { kind: "databricks_job", job_id: 1 },
    tenant: "a",
    version: 3,
    created_at: "x",
    created_by: { id: "1", name: "A" },
    updated_at: "y",
    updated_by: { id: "1", name: "A" },
    parameters: [],
  } as unknown as Template;
  expect(specOf(t)).toEqual({ name: "t", job_type: "other", task: { kind: "databricks_job", job_id: 1 }, parameters: [] });
});
