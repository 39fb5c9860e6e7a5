import type { Duration, Unit } from "../lib/duration";
import { Field } from "./Field";

export const UNITS: Unit[] = ["minutes", "hours", "days"];

/** An amount and its unit (two labelled controls: "{label}" and "{label} unit"), for an ISO-8601 duration. */
export function DurationField({
  label,
  value,
  error,
  hint,
  units = ["seconds", ...UNITS],
  onChange,
}: {
  label: string;
  value: Duration;
  error?: string;
  hint?: string;
  units?: Unit[];
  onChange: (v: Duration) => void;
}) {
  return (
    <div className="row-inputs">
      <Field label={label} error={error} hint={hint}>
        {(p) => <input {...p} inputMode="numeric" value={value.amount} onChange={(e) => onChange({ ...value, amount: e.target.value })} />}
      </Field>
      <Field label={`${label} unit`}>
        {(p) => (
          <select {...p} value={value.unit} onChange={(e) => onChange({ ...value, unit: e.target.value as Unit })}>
            {units.map((u) => (
              <option key={u} value={u}>
                {u}
              </option>
            ))}
          </select>
        )}
      </Field>
    </div>
  );
}
