import { type ReactNode, useMemo } from "react";

import type { Unit } from "../lib/duration";
import { readCron } from "../lib/cron";
import { type FieldErrors, type FormState, scheduleOf, type ScheduleState } from "../lib/form";
import { allZones } from "../lib/time";
import { UNITS } from "./DurationField";
import { Field } from "./Field";
import { FireTimes } from "./Preview";


interface Props {
  form: ScheduleState;
  errors: FieldErrors;
  set: <K extends keyof ScheduleState>(key: K, value: FormState[K]) => void;
  /** What the job does without a schedule, in words. */
  children: ReactNode;
}

/**
 * The fieldset "Schedule": "On a schedule", cron / one time / interval, time zone, start and end,
 * and the live "Next fire times" (the schedule form's, and the template page's).
 */
export function ScheduleFields({ form, errors, set, children }: Props) {
  const zones = useMemo(allZones, []);
  const cron = readCron(form.cron);
  return (
    <fieldset>
      <legend>Schedule</legend>
      {errors.schedule && <div className="field-error">{errors.schedule}</div>}
      <label className="check">
        <input type="checkbox" checked={form.scheduled} onChange={(e) => set("scheduled", e.target.checked)} />
        On a schedule
      </label>
      {form.scheduled ? (
        <>
          <div role="radiogroup" aria-label="Schedule kind" className="radios">
            {(
              [
                ["cron", "Cron"],
                ["at", "One time"],
                ["every", "Interval"],
              ] as const
            ).map(([value, label]) => (
              <label key={value} className="radio">
                <input
                  type="radio"
                  name="schedule-kind"
                  value={value}
                  checked={form.scheduleKind === value}
                  onChange={() => set("scheduleKind", value)}
                />
                {label}
              </label>
            ))}
          </div>
          {form.scheduleKind === "cron" && (
            <Field
              label="Cron expression"
              error={errors.cron}
              hint={
                <span id="cron-reading" className={cron.ok ? "" : "muted"}>
                  {cron.text || "Five fields: minute hour day-of-month month day-of-week, e.g. 30 1 * * *"}
                </span>
              }
            >
              {(p) => (
                <input {...p} className="mono" value={form.cron} onChange={(e) => set("cron", e.target.value)} autoComplete="off" spellCheck={false} />
              )}
            </Field>
          )}
          {form.scheduleKind === "at" && (
            <Field label="Run at" error={errors.at}>
              {(p) => <input {...p} type="datetime-local" value={form.at} onChange={(e) => set("at", e.target.value)} />}
            </Field>
          )}
          {form.scheduleKind === "every" && (
            <div className="row-inputs">
              <Field label="Every" error={errors.every}>
                {(p) => (
                  <input {...p} inputMode="numeric" value={form.every.amount} onChange={(e) => set("every", { ...form.every, amount: e.target.value })} />
                )}
              </Field>
              <Field label="Unit">
                {(p) => (
                  <select {...p} value={form.every.unit} onChange={(e) => set("every", { ...form.every, unit: e.target.value as Unit })}>
                    {UNITS.map((u) => (
                      <option key={u} value={u}>
                        {u}
                      </option>
                    ))}
                  </select>
                )}
              </Field>
            </div>
          )}
          <Field label="Time zone" error={errors.timezone}>
            {(p) => (
              <>
                <input {...p} list="zones" value={form.timezone} onChange={(e) => set("timezone", e.target.value)} autoComplete="off" />
                <datalist id="zones">
                  {zones.map((z) => (
                    <option key={z} value={z} />
                  ))}
                </datalist>
              </>
            )}
          </Field>
          <div className="row-inputs">
            <Field label="Start" error={errors.start}>
              {(p) => <input {...p} type="datetime-local" value={form.start} onChange={(e) => set("start", e.target.value)} />}
            </Field>
            <Field label="End" error={errors.end}>
              {(p) => <input {...p} type="datetime-local" value={form.end} onChange={(e) => set("end", e.target.value)} />}
            </Field>
          </div>
          <FireTimes spec={scheduleOf(form)} live />
        </>
      ) : (
        <p className="muted">{children}</p>
      )}
    </fieldset>
  );
}
