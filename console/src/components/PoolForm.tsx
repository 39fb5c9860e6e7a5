import { type FormEvent, useRef, useState } from "react";

import { ApiError, api, call, messageOf } from "../api/client";
import { POLICIES, type Pool, type PoolPolicy } from "../api/types";
import { Field } from "./Field";
import { useAnnounce } from "./Status";

export const POOL_NAME = /^[a-z0-9][a-z0-9-]{0,39}$/;
export const MAX_SLOTS = 1000;

export interface PoolFormState {
  name: string;
  slots: string; // "" = unbounded
  tenantLimit: string; // "" = no limit
  policy: PoolPolicy;
}

export const emptyPool = (): PoolFormState => ({ name: "", slots: "", tenantLimit: "", policy: "default" });

export const poolFormOf = (pool: Pool): PoolFormState => ({
  name: pool.name,
  slots: pool.slots == null ? "" : String(pool.slots),
  tenantLimit: pool.tenant_limit == null ? "" : String(pool.tenant_limit),
  policy: pool.policy,
});

type Errors = Partial<Record<keyof PoolFormState | "form", string>>;

// A whole number as a number; anything else as typed, for the server to say what is wrong with it.
const count = (text: string): number | string | null => {
  const t = text.trim();
  if (t === "") return null;
  return /^\d+$/.test(t) ? Number(t) : t;
};

/** The body of PUT /api/pools/{name} (every field: PUT replaces the pool's settings). */
export function poolBody(form: PoolFormState) {
  return { slots: count(form.slots), tenant_limit: count(form.tenantLimit), policy: form.policy };
}

/** What the browser can tell before asking: the name, which is part of the address. */
export function checkPool(form: PoolFormState): Errors {
  const name = form.name.trim();
  if (!name) return { name: "Give the pool a name." };
  if (!POOL_NAME.test(name))
    return { name: "Lowercase letters, digits and hyphens, starting with a letter or digit, at most 40 characters." };
  return {};
}

const FIELD: Record<string, keyof PoolFormState> = { name: "name", slots: "slots", tenant_limit: "tenantLimit", policy: "policy" };

/** The server's problem+json `errors` as the form's fields (what no field shows goes above). */
export function poolErrors(errors: Record<string, string>): Errors {
  const out: Errors = {};
  for (const [path, message] of Object.entries(errors)) {
    const key = FIELD[path] ?? "form";
    out[key] = out[key] ? `${out[key]}; ${message}` : message;
  }
  return out;
}

/** "Create or change a pool": for pools admins. Picking a pool in the table fills it in. */
export function PoolForm({
  initial,
  existing,
  onSaved,
}: {
  initial: PoolFormState;
  existing: string[];
  onSaved: (pool: Pool) => void;
}) {
  const announce = useAnnounce();
  const [form, setForm] = useState<PoolFormState>(initial);
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  const ref = useRef<HTMLFormElement>(null);
  const set = <K extends keyof PoolFormState>(key: K, value: PoolFormState[K]) => setForm((f) => ({ ...f, [key]: value }));
  const name = form.name.trim();
  const changing = existing.includes(name);

  function show(found: Errors) {
    setErrors(found);
    window.setTimeout(() => {
      const target = ref.current?.querySelector<HTMLElement>("[aria-invalid='true']") ?? ref.current?.querySelector<HTMLElement>("[role=alert]");
      target?.focus();
    }, 0);
  }

  async function submit(event: FormEvent) {
    event.preventDefault();
    const local = checkPool(form);
    if (Object.keys(local).length > 0) return show(local);
    setBusy(true);
    try {
      const saved = await call(api.PUT("/api/pools/{name}", { params: { path: { name } }, body: poolBody(form) as never }));
      setErrors({});
      announce(`${changing ? "Changed" : "Created"} pool ${saved.name}`);
      setForm(emptyPool());
      onSaved(saved);
    } catch (err) {
      show(err instanceof ApiError && err.status === 422 && Object.keys(err.errors).length > 0 ? poolErrors(err.errors) : { form: messageOf(err) });
    } finally {
      setBusy(false);
    }
  }

  return (
    <form ref={ref} className="pool-form" onSubmit={submit} noValidate aria-labelledby="pool-form-heading">
      <h2 id="pool-form-heading">Create or change a pool</h2>
      {errors.form && (
        <div role="alert" className="alert" tabIndex={-1}>
          <p>{errors.form}</p>
        </div>
      )}
      <div className="grid">
        <Field
          label="Pool name"
          error={errors.name}
          hint={changing ? "An existing pool: saving changes it." : "Lowercase letters, digits and hyphens."}
        >
          {(p) => (
            <input {...p} value={form.name} onChange={(e) => set("name", e.target.value)} autoComplete="off" spellCheck={false} maxLength={40} />
          )}
        </Field>
        <Field label="Slots" error={errors.slots} hint={`1 to ${MAX_SLOTS}; empty: unbounded (runs never wait).`}>
          {(p) => <input {...p} name="slots" inputMode="numeric" value={form.slots} onChange={(e) => set("slots", e.target.value)} />}
        </Field>
        <Field label="Tenant limit" error={errors.tenantLimit} hint="Most slots one tenant may hold; empty: no limit.">
          {(p) => <input {...p} inputMode="numeric" value={form.tenantLimit} onChange={(e) => set("tenantLimit", e.target.value)} />}
        </Field>
        <Field
          label="Policy"
          error={errors.policy}
          hint={`Who goes first when slots free up: ${POLICIES.find((o) => o.value === form.policy)?.help ?? form.policy}.`}
        >
          {(p) => (
            <select {...p} value={form.policy} onChange={(e) => set("policy", e.target.value as PoolPolicy)}>
              {POLICIES.map((o) => (
                <option key={o.value} value={o.value}>
                  {o.value}
                </option>
              ))}
            </select>
          )}
        </Field>
      </div>
      <div className="actions">
        <button type="submit" className="primary" disabled={busy}>
          Save pool
        </button>
        <button type="button" onClick={() => { setForm(emptyPool()); setErrors({}); }}>
          Clear
        </button>
      </div>
    </form>
  );
}
