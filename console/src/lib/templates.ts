// A template's parameters as form inputs, and the inputs as the JSON values the API takes.
import type { components } from "../api/schema";
import { fieldErrors, type FieldErrors } from "./form";

type S = components["schemas"];
export type Template = S["TemplateOut"];
export type TemplateParameter = S["TemplateParameter"];
export type ParameterType = TemplateParameter["type"];
export type Scalar = boolean | number | string;
export type TemplateRef = S["TemplateRef"];

/** What each input holds: the text typed (string, int, float), the checkbox (bool), the option's index or "" (enum). */
export type ParameterInputs = Record<string, string | boolean>;

/** How a parameter is entered. */
export interface InputKind {
  element: "input" | "checkbox" | "select";
  type?: "text" | "number";
  step?: "1" | "any";
  inputMode?: "numeric" | "decimal";
}

export function inputKind(type: ParameterType): InputKind {
  switch (type) {
    case "int":
      return { element: "input", type: "number", step: "1", inputMode: "numeric" };
    case "float":
      return { element: "input", type: "number", step: "any", inputMode: "decimal" };
    case "bool":
      return { element: "checkbox" };
    case "enum":
      return { element: "select" };
    default:
      return { element: "input", type: "text" };
  }
}

const TYPE_WORDS: Record<ParameterType, string> = {
  string: "text",
  int: "integer",
  float: "number",
  bool: "true or false",
  enum: "one of",
};

/** "integer", "one of de, fr, uk". */
export function typeInWords(p: TemplateParameter): string {
  if (p.type === "enum") return `one of ${(p.options ?? []).map(valueText).join(", ")}`;
  return TYPE_WORDS[p.type] ?? p.type;
}

/** A value as a placeholder is filled with: `true`, `10`, `0.001`, text. */
export function valueText(value: Scalar | null | undefined): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "boolean") return value ? "true" : "false";
  return String(value);
}

/** "required", "default 10", "optional". */
export function needInWords(p: TemplateParameter): string {
  if (p.required) return "required";
  if (p.default !== null && p.default !== undefined) return `default ${valueText(p.default)}`;
  return "optional";
}

const same = (a: Scalar, b: Scalar) => typeof a === typeof b && a === b;

/** The inputs as the form opens: each default filled in; a checkbox without one unticked. */
export function initialInputs(parameters: TemplateParameter[]): ParameterInputs {
  const out: ParameterInputs = {};
  for (const p of parameters) {
    const given = p.default ?? null;
    if (p.type === "bool") out[p.name] = given === true;
    else if (p.type === "enum") {
      const i = given === null ? -1 : (p.options ?? []).findIndex((o) => same(o, given));
      out[p.name] = i < 0 ? "" : String(i);
    } else out[p.name] = given === null ? "" : valueText(given);
  }
  return out;
}

/** Whether an enum's select offers "no value" (it has no default to fall back on). */
export const offersNone = (p: TemplateParameter) => p.type === "enum" && (p.default === null || p.default === undefined);

/**
 * The values to send, typed as the API wants them (int → integer, float → number, bool →
 * boolean, enum → the option itself). An empty input is left out, so that the default applies (or
 * the server says the parameter is required). What does not convert goes as typed, so that the
 * server names what is wrong with it ("2.5" for an int goes as 2.5: "must be an integer").
 */
export function parameterValues(parameters: TemplateParameter[], inputs: ParameterInputs): Record<string, Scalar> {
  const out: Record<string, Scalar> = {};
  for (const p of parameters) {
    const input = inputs[p.name];
    if (p.type === "bool") {
      out[p.name] = input === true;
      continue;
    }
    const text = typeof input === "string" ? input : "";
    if (p.type === "enum") {
      const option = text === "" ? undefined : (p.options ?? [])[Number(text)];
      if (option !== undefined) out[p.name] = option;
      continue;
    }
    if (p.type === "string") {
      if (text !== "") out[p.name] = text;
      continue;
    }
    const trimmed = text.trim();
    if (trimmed === "") continue;
    const number = Number(trimmed);
    out[p.name] = Number.isFinite(number) ? number : trimmed;
  }
  return out;
}

/** What the browser can tell before asking: a number that is not one, an int that is not whole. */
export function checkInputs(parameters: TemplateParameter[], inputs: ParameterInputs): FieldErrors {
  const errors: FieldErrors = {};
  for (const p of parameters) {
    const input = inputs[p.name];
    if (typeof input !== "string" || input.trim() === "") continue;
    const number = Number(input.trim());
    if ((p.type === "int" || p.type === "float") && !Number.isFinite(number)) errors[`param:${p.name}`] = "must be a number";
  }
  return errors;
}

export const PARAM_KEY = "param:";

/**
 * The server's 422 `errors` as the form's fields: `parameters.<name>` → `param:<name>`; the job's
 * name, description and schedule as the schedule form keys them; the rest under `form`.
 */
export function templateFieldErrors(errors: Record<string, string>, shown: Set<string>): FieldErrors {
  const out: FieldErrors = {};
  const add = (key: string, message: string) => {
    out[key] = out[key] ? `${out[key]}; ${message}` : message;
  };
  for (const [path, message] of Object.entries(errors)) {
    if (path.startsWith("parameters.")) {
      const name = path.slice("parameters.".length);
      add(shown.has(`${PARAM_KEY}${name}`) ? `${PARAM_KEY}${name}` : "form", shown.has(`${PARAM_KEY}${name}`) ? message : `${name}: ${message}`);
      continue;
    }
    for (const [key, text] of Object.entries(fieldErrors({ [path]: message })))
      add(shown.has(key) ? key : "form", shown.has(key) ? text : `${path}: ${text}`);
  }
  return out;
}

const NOT_SPEC = new Set(["tenant", "version", "created_at", "created_by", "updated_at", "updated_by"]);

/** A template as `PUT /api/templates/{name}` takes it: what it is, without who made it when. */
export function specOf(template: Template): Record<string, unknown> {
  return Object.fromEntries(Object.entries(template).filter(([k]) => !NOT_SPEC.has(k)));
}
