// The schedule form's state, and how it becomes the API's job definition (and back, for edits).
import type { Job, JobDefinition, JobType, ScheduleSpec } from "../api/types";
import { type Duration, fromIso, toIso } from "./duration";
import {
  checkNotifications,
  emptyNotifications,
  notificationError,
  notificationsDraftOf,
  notificationsOf,
  type NotificationsDraft,
} from "./notifications";
import { isoToZoned, zonedToIso } from "./time";
import { checkTriggers, draftOf, type TriggerDraft, triggerError, triggerOf } from "./triggers";

export type TaskKind = "databricks_job" | "databricks_run";
export type RunWhat = "notebook" | "python_file" | "python_wheel";
export type ScheduleKind = "cron" | "at" | "every";
export type ClusterKind = "existing" | "new";
export interface Pair {
  key: string;
  value: string;
}

export interface FormState {
  /** A pipeline job's task, kept as it is: the form edits everything but its steps. */
  pipeline?: Extract<Job["task"], { kind: "pipeline" }>;
  /** Whether it runs on a schedule (the schedule fields below); without, `schedule` is null. */
  scheduled: boolean;
  /** Files arriving, webhook calls, other jobs' runs: what else starts it (`after` ones kept as they are). */
  triggers: TriggerDraft[];
  /** While paused: record each schedule time and event that passes as a SKIPPED run (else drop it). */
  recordSkipped: boolean;
  /** Who is told about its runs (webhooks, Teams, Slack), and when. */
  notifications: NotificationsDraft;
  name: string;
  description: string;
  jobType: JobType;
  taskKind: TaskKind;
  jobId: string;
  pairs: Pair[]; // job parameters, or notebook widgets
  runWhat: RunWhat;
  notebookPath: string;
  pythonFile: string;
  packageName: string;
  entryPoint: string;
  args: string[]; // python file / wheel arguments
  clusterKind: ClusterKind;
  clusterId: string;
  sparkVersion: string;
  nodeType: string;
  workers: string;
  scheduleKind: ScheduleKind;
  cron: string;
  at: string; // datetime-local, in `timezone`
  every: Duration;
  timezone: string;
  start: string; // datetime-local, in `timezone`
  end: string;
  maxAttempts: string;
  retryDelay: Duration;
  timeout: Duration;
  overlap: JobDefinition["overlap"];
  misfire: JobDefinition["misfire"];
  priority: JobDefinition["priority"];
  tags: string;
  pool: string;
  slots: string;
  deadline: Duration;
}

export function emptyForm(zone: string): FormState {
  return {
    name: "",
    description: "",
    jobType: "model_training",
    taskKind: "databricks_job",
    jobId: "",
    pairs: [],
    runWhat: "notebook",
    notebookPath: "",
    pythonFile: "",
    packageName: "",
    entryPoint: "",
    args: [],
    clusterKind: "existing",
    clusterId: "",
    sparkVersion: "",
    nodeType: "",
    workers: "1",
    scheduleKind: "cron",
    cron: "",
    at: "",
    every: { amount: "15", unit: "minutes" },
    timezone: zone,
    start: "",
    end: "",
    maxAttempts: "1",
    retryDelay: { amount: "1", unit: "minutes" },
    timeout: { amount: "", unit: "hours" },
    overlap: "skip",
    misfire: "fire_once",
    priority: "normal",
    tags: "",
    pool: "default",
    slots: "1",
    deadline: { amount: "", unit: "hours" },
    scheduled: true,
    triggers: [],
    recordSkipped: false,
    notifications: emptyNotifications(),
  };
}

function pairsOf(value: unknown): Pair[] {
  if (!value || typeof value !== "object" || Array.isArray(value)) return [];
  return Object.entries(value as Record<string, unknown>).map(([key, v]) => ({ key, value: String(v) }));
}

/** The form filled in from a job (for the edit dialog). */
export function formFromJob(job: Job): FormState {
  const zone = job.schedule?.timezone || "UTC";
  const form = emptyForm(zone);
  const task = job.task;
  const schedule = job.schedule;
  Object.assign(form, {
    name: job.name,
    description: job.description ?? "",
    jobType: job.job_type,
    overlap: job.overlap,
    misfire: job.misfire,
    priority: job.priority,
    tags: (job.tags ?? []).join(", "),
    pool: job.pool ?? "default",
    slots: String(job.slots ?? 1),
    deadline: job.deadline ? fromIso(job.deadline, "hours") : { amount: "", unit: "hours" },
    maxAttempts: String(job.retry?.max_attempts ?? 1),
    retryDelay: fromIso(job.retry?.initial_delay, "minutes"),
    timeout: job.timeout ? fromIso(job.timeout, "hours") : { amount: "", unit: "hours" },
    start: schedule?.start_at ? isoToZoned(schedule.start_at, zone) : "",
    end: schedule?.end_at ? isoToZoned(schedule.end_at, zone) : "",
  });
  form.triggers = (job.triggers ?? []).map(draftOf);
  form.recordSkipped = job.record_skipped_while_paused ?? false;
  form.notifications = notificationsDraftOf(job.notifications);
  if (!schedule) form.scheduled = false;
  else if (schedule.cron) Object.assign(form, { scheduleKind: "cron", cron: schedule.cron });
  else if (schedule.at) Object.assign(form, { scheduleKind: "at", at: isoToZoned(schedule.at, zone) });
  else if (schedule.every) Object.assign(form, { scheduleKind: "every", every: fromIso(schedule.every) });
  if (task.kind === "pipeline") {
    form.pipeline = task;
  } else if (task.kind === "databricks_job") {
    Object.assign(form, { taskKind: "databricks_job", jobId: String(task.job_id), pairs: pairsOf(task.parameters) });
  } else {
    const runWhat: RunWhat = task.python_wheel ? "python_wheel" : task.python_file ? "python_file" : "notebook";
    Object.assign(form, {
      taskKind: "databricks_run",
      runWhat,
      notebookPath: task.notebook_path ?? "",
      pythonFile: task.python_file ?? "",
      packageName: task.python_wheel?.package_name ?? "",
      entryPoint: task.python_wheel?.entry_point ?? "",
      pairs: runWhat === "notebook" ? pairsOf(task.parameters) : [],
      args: Array.isArray(task.parameters) ? task.parameters.map(String) : [],
      clusterKind: task.existing_cluster_id ? "existing" : "new",
      clusterId: task.existing_cluster_id ?? "",
      sparkVersion: task.cluster?.spark_version ?? "",
      nodeType: task.cluster?.node_type_id ?? "",
      workers: String(task.cluster?.num_workers ?? 1),
    });
  }
  return form;
}

const params = (pairs: Pair[]) =>
  Object.fromEntries(pairs.filter((p) => p.key.trim() !== "").map((p) => [p.key.trim(), p.value]));

function task(form: FormState): Record<string, unknown> {
  if (form.pipeline) return form.pipeline;
  if (form.taskKind === "databricks_job") {
    return { kind: "databricks_job", job_id: Number(form.jobId) || form.jobId, parameters: params(form.pairs) };
  }
  const out: Record<string, unknown> = { kind: "databricks_run" };
  if (form.runWhat === "notebook") Object.assign(out, { notebook_path: form.notebookPath, parameters: params(form.pairs) });
  if (form.runWhat === "python_file") Object.assign(out, { python_file: form.pythonFile, parameters: form.args });
  if (form.runWhat === "python_wheel")
    Object.assign(out, {
      python_wheel: { package_name: form.packageName, entry_point: form.entryPoint },
      parameters: form.args,
    });
  if (form.clusterKind === "existing") out.existing_cluster_id = form.clusterId;
  else
    out.cluster = {
      spark_version: form.sparkVersion,
      node_type_id: form.nodeType || null,
      num_workers: Number(form.workers) || 0,
    };
  return out;
}

/** The form's fields that describe a schedule (the schedule form's, and a template's job form's). */
export type ScheduleState = Pick<FormState, "scheduled" | "scheduleKind" | "cron" | "at" | "every" | "timezone" | "start" | "end">;

/** The schedule the form describes (also what the live preview asks about). */
export function scheduleOf(form: ScheduleState): ScheduleSpec {
  const spec: ScheduleSpec = { timezone: form.timezone.trim() };
  if (form.scheduleKind === "cron") spec.cron = form.cron.trim();
  if (form.scheduleKind === "at") spec.at = zonedToIso(form.at, spec.timezone) ?? form.at;
  if (form.scheduleKind === "every") spec.every = toIso(form.every) ?? form.every.amount;
  if (form.start) spec.start_at = zonedToIso(form.start, spec.timezone) ?? form.start;
  if (form.end) spec.end_at = zonedToIso(form.end, spec.timezone) ?? form.end;
  return spec;
}

/**
 * The job definition to send. `base` (the job being edited) keeps what the form does not show
 * (catch-up window, backoff, cluster settings...), since PUT replaces the whole definition.
 */
export function bodyOf(form: FormState, base?: Job): Record<string, unknown> {
  const retry = { ...(base?.retry ?? {}), max_attempts: Number(form.maxAttempts) || form.maxAttempts };
  const delay = toIso(form.retryDelay);
  const deadline = toIso(form.deadline);
  if (delay) Object.assign(retry, { initial_delay: delay });
  const keep = base ? { catch_up_window: base.catch_up_window } : {};
  const baseTask = base?.task as Record<string, unknown> | undefined;
  const formTask = task(form);
  const mergedTask =
    baseTask && baseTask.kind === formTask.kind && baseTask.cluster && formTask.cluster
      ? { ...formTask, cluster: { ...(baseTask.cluster as object), ...(formTask.cluster as object) } }
      : formTask;
  return {
    ...keep,
    name: form.name.trim(),
    description: form.description,
    job_type: form.jobType,
    task: mergedTask,
    schedule: form.scheduled ? scheduleOf(form) : null,
    triggers: form.triggers.map(triggerOf),
    record_skipped_while_paused: form.recordSkipped,
    notifications: notificationsOf(form.notifications),
    retry,
    timeout: toIso(form.timeout) || null,
    overlap: form.overlap,
    misfire: form.misfire,
    priority: form.priority,
    pool: form.pool.trim() || "default",
    slots: /^\d+$/.test(form.slots.trim()) ? Number(form.slots.trim()) : form.slots,
    // An amount that is not a whole number goes as typed, so the server says what is wrong with it.
    deadline: deadline === null ? form.deadline.amount : deadline || null,
    tags: form.tags
      .split(",")
      .map((t) => t.trim())
      .filter(Boolean),
  };
}

export type FieldErrors = Record<string, string>;

/** What the browser can tell before asking the server. */
export function checkForm(form: FormState): FieldErrors {
  const errors: FieldErrors = { ...checkTriggers(form.triggers), ...checkNotifications(form.notifications) };
  if (form.scheduled && form.start && form.end && form.end <= form.start) errors.end = "The end must be after the start.";
  return errors;
}

const FIELD_OF: Record<string, string> = {
  name: "name",
  description: "description",
  job_type: "jobType",
  "task.job_id": "jobId",
  "task.parameters": "pairs",
  "task.notebook_path": "notebookPath",
  "task.python_file": "pythonFile",
  "task.python_wheel": "packageName",
  "task.python_wheel.package_name": "packageName",
  "task.python_wheel.entry_point": "entryPoint",
  "task.existing_cluster_id": "clusterId",
  "task.cluster": "sparkVersion",
  "task.cluster.spark_version": "sparkVersion",
  "task.cluster.node_type_id": "nodeType",
  "task.cluster.num_workers": "workers",
  task: "task",
  "schedule.cron": "cron",
  "schedule.at": "at",
  "schedule.every": "every",
  "schedule.anchor": "every",
  "schedule.timezone": "timezone",
  "schedule.start_at": "start",
  "schedule.end_at": "end",
  schedule: "schedule",
  "retry.max_attempts": "maxAttempts",
  "retry.initial_delay": "retryDelay",
  retry: "maxAttempts",
  timeout: "timeout",
  overlap: "overlap",
  misfire: "misfire",
  priority: "priority",
  tags: "tags",
  pool: "pool",
  slots: "slots",
  deadline: "deadline",
};

/** The server's problem+json `errors` (dotted body paths) as the form's fields. */
export function fieldErrors(errors: Record<string, string>): FieldErrors {
  const out: FieldErrors = {};
  for (const [path, message] of Object.entries(errors)) {
    const own = triggerError(path, message) ?? notificationError(path, message); // keyed by list item
    if (own) {
      const [key, text] = own;
      out[key] = out[key] ? `${out[key]}; ${text}` : text;
      continue;
    }
    let field = FIELD_OF[path];
    for (let cut = path; !field && cut.includes("."); ) {
      cut = cut.slice(0, cut.lastIndexOf("."));
      field = FIELD_OF[cut];
    }
    if (path === "schedule" && /end_at/.test(message)) field = "end";
    if (path === "schedule" && /start_at/.test(message) && !/end_at/.test(message)) field = "start";
    const key = field ?? "form";
    out[key] = out[key] ? `${out[key]}; ${message}` : message;
  }
  return out;
}
