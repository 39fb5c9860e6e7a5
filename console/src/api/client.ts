import createClient, { type Middleware } from "openapi-fetch";

import type { paths } from "./schema";

/** What went wrong with an API call, as the user should hear it. */
export class ApiError extends Error {
  constructor(
    readonly status: number, // 0: the scheduler could not be reached
    message: string,
    readonly errors: Record<string, string> = {},
    readonly retryAfter: string | null = null,
  ) {
    super(message);
  }
}

let tenant: string | null = null;
/** The tenant every call acts in (X-Scheduler-Tenant), for users with several. */
export function setTenant(value: string | null) {
  tenant = value;
}

const tenantHeader: Middleware = {
  onRequest({ request }) {
    if (tenant) request.headers.set("X-Scheduler-Tenant", tenant);
    return request;
  },
};

// Same origin; fetch is looked up per call (tests stub it).
export const api = createClient<paths>({
  baseUrl: globalThis.location?.origin ?? "",
  fetch: (request) => globalThis.fetch(request),
});
api.use(tenantHeader);

interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** The data of a call, or an ApiError that says what happened (never a raw exception). */
export async function call<T>(request: Promise<Answer<T>>): Promise<T> {
  return (await answered(request)).data;
}

/** The data of a call and its response (for its headers), or an ApiError as `call` throws it. */
export async function answered<T>(request: Promise<Answer<T>>): Promise<{ data: T; response: Response }> {
  let answer: Answer<T>;
  try {
    answer = await request;
  } catch {
    throw new ApiError(0, "The scheduler cannot be reached. Check your connection and try again.");
  }
  const { data, error, response } = answer;
  if (response.ok && error === undefined) return { data: data as T, response };
  throw problem(response, error);
}

function problem(response: Response, body: unknown): ApiError {
  const p = (typeof body === "object" && body !== null ? body : {}) as {
    detail?: unknown;
    title?: unknown;
    errors?: unknown;
  };
  const errors =
    typeof p.errors === "object" && p.errors !== null ? (p.errors as Record<string, string>) : {};
  const detail = typeof p.detail === "string" ? p.detail : typeof p.title === "string" ? p.title : "";
  const retryAfter = response.headers.get("Retry-After");
  const status = response.status;
  let message: string;
  if (status === 401) message = "You are not signed in. Sign in and reload the page.";
  else if (status === 403) message = `You may not do this${detail ? `: ${detail}` : "."}`;
  else if (status === 404) message = detail ? `Not found: ${detail}` : "Not found.";
  else if (status >= 500)
    message =
      `The scheduler is unavailable right now${detail ? ` (${detail})` : ""}.` +
      (retryAfter ? ` Try again in ${retryAfter} s.` : " Try again shortly.");
  else message = detail || `The request failed (${status}).`;
  return new ApiError(status, message, errors, retryAfter);
}

export function messageOf(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  return err instanceof Error ? err.message : String(err);
}
