// Analytics figures for the tests: an empty set of figures, a day and a group built on it.
import type { AnalyticsGroup, DayFigures } from "../api/types";
import type { Figures } from "../lib/analytics";

export const NONE: Figures = {
  runs: 0,
  succeeded: 0,
  failed: 0,
  timed_out: 0,
  cancelled: 0,
  skipped: 0,
  success_rate: null,
  retry_rate: null,
  duration_p50_s: null,
  duration_p95_s: null,
  queue_wait_p50_s: null,
  queue_wait_p95_s: null,
  fire_lag_p95_s: null,
  deadline_misses: 0,
};
export const day = (d: string, over: Partial<Figures>): DayFigures => ({ ...NONE, day: d, ...over });
export const group = (key: string, over: Partial<AnalyticsGroup> = {}): AnalyticsGroup => ({
  ...NONE,
  key,
  name: key,
  tenant: null,
  job_type: null,
  days: [],
  ...over,
});
