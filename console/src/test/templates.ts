// Templates for the tests: the train-model template as the API answers it, its parameters, and a
// stubbed API that serves it and records what the form sends.
import { vi } from "vitest";

import type { Template, TemplateParameter } from "../lib/templates";

/** A response with a JSON body. */
export const json = (status: number, body: unknown, type = "application/json") =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": type } });

export const ACTOR = { id: "dev", name: "Dev" };

/** A parameter: optional, no default, no options, unless `over` says. */
export const param = (over: Partial<TemplateParameter> & Pick<TemplateParameter, "name" | "type">): TemplateParameter => ({
  description: "",
  required: false,
  default: null,
  options: null,
  ...over,
});

/** One parameter of each type: a required choice, a float, an int, a bool and a string. */
export const PARAMS: TemplateParameter[] = [
  param({ name: "market", type: "enum", options: ["de", "fr", "uk"], required: true }),
  param({ name: "learning_rate", type: "float", default: 0.001 }),
  param({ name: "epochs", type: "int", default: 10 }),
  param({ name: "full_refresh", type: "bool", default: false }),
  param({ name: "note", type: "string" }),
];

/** train-model at version 2, with PARAMS (the market described). */
export const TEMPLATE = {
  name: "train-model",
  description: "Train a churn model for one market",
  job_type: "model_training",
  task: { kind: "databricks_job", job_id: 123, parameters: { market: "{{params.market}}", epochs: "{{params.epochs}}" } },
  parameters: [{ ...PARAMS[0]!, description: "Which market" }, ...PARAMS.slice(1)],
  overlap: "skip",
  misfire: "fire_once",
  catch_up_window: "PT1H",
  priority: "normal",
  pool: "default",
  slots: 1,
  record_skipped_while_paused: false,
  tenant: "default",
  version: 2,
  created_at: "2026-01-01T00:00:00Z",
  created_by: ACTOR,
  updated_at: "2026-01-02T00:00:00Z",
  updated_by: ACTOR,
} as unknown as Template;

/** TEMPLATE with some fields changed. */
export const template = (over: Partial<Template>): Template => ({ ...TEMPLATE, ...over });

/**
 * Stubs `fetch`: a request to one of `answers`' paths gets its JSON; one to `post` is recorded and
 * answered by `answer`; anything else is a 404. The bodies sent to `post`, in order.
 */
export function stubApi(
  answers: Record<string, unknown>,
  post: string,
  answer: (body: Record<string, unknown>) => Response,
): Record<string, unknown>[] {
  const bodies: Record<string, unknown>[] = [];
  vi.stubGlobal("fetch", async (request: Request) => {
    const path = new URL(request.url).pathname;
    if (Object.hasOwn(answers, path)) return json(200, answers[path]);
    if (path === post) {
      const body = (await request.json()) as Record<string, unknown>;
      bodies.push(body);
      return answer(body);
    }
    return json(404, { detail: path });
  });
  return bodies;
}
