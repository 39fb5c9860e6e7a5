import { useQuery } from "@tanstack/react-query";
import { useEffect, useId, useState } from "react";

import { api, call, messageOf } from "../api/client";
import type { FireTime, ScheduleSpec } from "../api/types";
import { formatInstant } from "../lib/time";

export function useDebounced<T>(value: T, ms = 300): T {
  const [current, setCurrent] = useState(value);
  useEffect(() => {
    const timer = window.setTimeout(() => setCurrent(value), ms);
    return () => window.clearTimeout(timer);
  }, [value, ms]);
  return current;
}

function complete(spec: ScheduleSpec): boolean {
  return Boolean(spec.timezone && (spec.cron || spec.at || spec.every));
}

export function usePreview(spec: ScheduleSpec, count = 5) {
  return useQuery({
    queryKey: ["preview", spec, count],
    queryFn: () => call(api.POST("/api/schedules/preview", { body: { schedule: spec, count } })),
    enabled: complete(spec),
    retry: false,
    staleTime: 60_000,
  });
}

export function dstNote(fire: FireTime): string | null {
  if (fire.dst === "shifted") return "DST: this wall-clock time does not exist that day; it fires when the clock springs forward";
  if (fire.dst === "repeated_skipped") return "DST: this hour repeats that day; it fires once, the first time";
  return null;
}

/** The next fire times of a schedule, in its zone and UTC, with daylight-saving effects said. */
export function FireTimes({ spec, count = 5, live = false }: { spec: ScheduleSpec; count?: number; live?: boolean }) {
  const headingId = useId();
  const debounced = useDebounced(spec, live ? 300 : 0);
  const preview = usePreview(debounced, count);
  return (
    <section aria-labelledby={headingId} className="preview">
      <h3 id={headingId}>Next fire times</h3>
      {!complete(debounced) && <p className="muted">Fill in the schedule to see when it fires.</p>}
      {preview.isError && <p className="field-error" aria-live="polite">{messageOf(preview.error)}</p>}
      {preview.data && preview.data.fire_times.length === 0 && <p className="muted">It never fires again.</p>}
      {preview.data && preview.data.fire_times.length > 0 && (
        <ul className="fire-times">
          {preview.data.fire_times.map((fire) => (
            <li key={fire.utc}>
              <span>{formatInstant(fire.utc, debounced.timezone)}</span>{" "}
              <span className="muted">({formatInstant(fire.utc, "UTC")})</span>
              {dstNote(fire) && <span className="dst"> {dstNote(fire)}</span>}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
