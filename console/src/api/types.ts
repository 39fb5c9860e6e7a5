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
export type Priority = S["Priority"];
export type Pool = S["PoolOut"];
export type PoolSpec = S["PoolSpec"];
export type PoolPolicy = PoolSpec["policy"];
export type ClassWait = S["ClassWaitOut"];
export type Queue = S["QueueOut"];
export type QueuedRun = S["QueuedRunOut"];
export type Step = S["StepOut"];
export type StepState = S["StepState"];
export type RunIf = S["RunIf"];
export type JobTrigger = NonNullable<JobDefinition["triggers"]>[number];
export type AfterTrigger = S["AfterTrigger"];
export type FileArrivalTrigger = S["FileArrivalTrigger"];
export type Cause = S["Cause"];
export type CausedFile = S["CausedFile"];
export type RunTrigger = S["Trigger"];
export type Notifications = S["Notifications"];
export type Destination = NonNullable<Notifications["on_failure"]>[number];
export type DestinationKind = Destination["kind"];
export type Notice = S["NoticeOut"];
export type NoticeEvent = S["NoticeEvent"];
export type NoticeState = S["NoticeState"];
export type DeliveryTry = S["DeliveryTry"];
export type NotificationTest = S["NotificationTestOut"];
export type Analytics = S["AnalyticsOut"];
export type AnalyticsGroup = S["GroupOut"];
export type DayFigures = S["DayFigures"];
export type GroupBy = Analytics["group_by"];

export const JOB_TYPES: { value: JobType; label: string }[] = [
  { value: "model_training", label: "Model training" },
  { value: "data_processing", label: "Data processing" },
  { value: "pipeline", label: "Pipeline" },
  { value: "other", label: "Other" },
];
export const STATUSES: JobStatus[] = ["ACTIVE", "PAUSED", "CANCELLED", "COMPLETED"];
export const TERMINAL: RunState[] = ["SUCCEEDED", "SUCCEEDED_WITH_FAILURES", "FAILED", "TIMED_OUT", "CANCELLED", "SKIPPED"];
export const isTerminal = (state: RunState) => TERMINAL.includes(state);

/** Priority classes, the one that goes first first (the order the queue tables use). */
export const PRIORITIES: { value: Priority; label: string }[] = [
  { value: "urgent", label: "Urgent" },
  { value: "high", label: "High" },
  { value: "normal", label: "Normal" },
  { value: "low", label: "Low" },
];
/** The dispatch policies a pool may use, and what each does (shared/domain/dispatch.py). */
export const POLICIES: { value: PoolPolicy; help: string }[] = [
  { value: "default", help: "least slack to each run's deadline, capped by its priority's patience: nothing starves" },
  { value: "fifo", help: "first come, first served" },
  { value: "priority", help: "strict priority classes, then arrival" },
  { value: "edf", help: "earliest deadline first; runs without one after" },
  { value: "learned", help: "a score fitted on the dispatch simulator" },
];
