// The duration fields of the form: an amount and a unit, as ISO-8601 (what the API takes).

export type Unit = "seconds" | "minutes" | "hours" | "days";
export interface Duration {
  amount: string;
  unit: Unit;
}

const LETTER: Record<Unit, string> = { seconds: "S", minutes: "M", hours: "H", days: "D" };
const SECONDS: Record<Unit, number> = { seconds: 1, minutes: 60, hours: 3600, days: 86400 };

/** "" for an empty amount; "PT15M", "PT2H", "P1D"; null when the amount is not a whole number >= 0. */
export function toIso({ amount, unit }: Duration): string | null {
  const text = amount.trim();
  if (text === "") return "";
  if (!/^\d+$/.test(text)) return null;
  return unit === "days" ? `P${Number(text)}D` : `PT${Number(text)}${LETTER[unit]}`;
}

const ISO = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

/** An ISO-8601 duration as the largest unit that expresses it exactly. */
export function fromIso(iso: string | null | undefined, fallback: Unit = "minutes"): Duration {
  const m = iso ? ISO.exec(iso) : null;
  if (!m) return { amount: "", unit: fallback };
  const [d, h, mi, s] = m.slice(1).map((v) => Number(v ?? 0)) as [number, number, number, number];
  const total = d * 86400 + h * 3600 + mi * 60 + s;
  for (const unit of ["days", "hours", "minutes"] as const) {
    if (total > 0 && total % SECONDS[unit] === 0) return { amount: String(total / SECONDS[unit]), unit };
  }
  return { amount: String(total), unit: "seconds" };
}

/** "15 minutes", "1 hour" */
export function inWords(iso: string | null | undefined): string {
  const { amount, unit } = fromIso(iso);
  if (!amount) return iso ?? "";
  return `${amount} ${Number(amount) === 1 ? unit.slice(0, -1) : unit}`;
}
