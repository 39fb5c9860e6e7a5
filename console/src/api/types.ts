import type { components } from "./schema";

type S = components["schemas"];
export type Job = S["JobOut"];
export type JobSummary = S["JobSummary"];
export type JobDefinition = S["JobDefinition"];
export type JobType = S["JobType"];
export type JobStatus = S["JobStatus"];
export type ScheduleSpec = S["ScheduleSpec"];
export type Run = S["RunOut"];
export type RunState = S["RunState"];
export type Attempt = S["Attempt"];
export type AuditEntry = S["AuditEntry"];
export type FireTime = S["FireTimeOut"];
export type Me = S["MeOut"];
export type Problem = S["Problem"];

export const JOB_TYPES: { value: JobType; label: string }[] = [
  { value: "model_training", label: "Model training" },
  { value: "data_processing", label: "Data processing" },
  { value: "pipeline", label: "Pipeline" },
  { value: "other", label: "Other" },
];
export const STATUSES: JobStatus[] = ["ACTIVE", "PAUSED", "CANCELLED", "COMPLETED"];
export const TERMINAL: RunState[] = ["SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED", "SKIPPED"];
export const isTerminal = (state: RunState) => TERMINAL.includes(state);
