import { describe, expect, it } from "vitest";

import type { FileArrivalTrigger, Job, JobTrigger } from "../api/types";
import { bodyOf, checkForm, emptyForm, fieldErrors, formFromJob } from "./form";
import {
  checkIdempotencyKey,
  checkTriggers,
  curlExample,
  draftOf,
  durationIso,
  emptyFileDraft,
  filePattern,
  fileTriggerInWords,
  hasCauseDetails,
  newIdempotencyKey,
  noScheduleInWords,
  parseParameters,
  replayInWords,
  runOrigin,
  triggerError,
  triggerOf,
  webhookUrl,
} from "./triggers";

const SALES: FileArrivalTrigger = {
  kind: "file_arrival",
  container: "landing",
  prefix: "sales/",
  suffix: ".parquet",
  account: null,
  wait_after_last_change: "PT1M",
  min_time_between_triggers: "PT5M",
};

describe("triggers in words", () => {
  it("say where files are watched and how runs are spaced", () => {
    expect(filePattern(SALES)).toBe("landing/sales/*.parquet");
    expect(filePattern({ ...SALES, prefix: "", suffix: "", account: "acct" })).toBe("acct: landing/*");
    expect(fileTriggerInWords(SALES)).toBe(
      "When a blob is created in landing/sales/*.parquet, waiting 1 minute after the last file, at most one run every 5 minutes",
    );
    expect(fileTriggerInWords({ ...SALES, wait_after_last_change: "PT0S", min_time_between_triggers: "PT0S" })).toBe(
      "When a blob is created in landing/sales/*.parquet",
    );
    expect(fileTriggerInWords({ ...SALES, wait_after_last_change: "PT90S", min_time_between_triggers: "P1D" })).toBe(
      "When a blob is created in landing/sales/*.parquet, waiting 90 seconds after the last file, at most one run every 1 day",
    );
  });
  it("say what starts a job that has no schedule", () => {
    expect(noScheduleInWords([])).toBe("No schedule: runs only when asked");
    expect(noScheduleInWords([{ kind: "after" }])).toBe("No schedule: runs after other jobs");
    expect(noScheduleInWords([{ kind: "file_arrival" }, { kind: "webhook" }])).toBe("No schedule: runs when files arrive or when called (webhook)");
    expect(noScheduleInWords(undefined)).toBe("No schedule");
  });
});

describe("why a run started", () => {
  const names = (id: string) => ({ J1: "prepare", J2: "features" })[id] ?? id;
  it("is a word or two for the runs table", () => {
    expect(runOrigin({ trigger: "schedule", cause: null })).toBe("Schedule");
    expect(runOrigin({ trigger: "manual", cause: null })).toBe("Run now");
    expect(runOrigin({ trigger: "retry", cause: null })).toBe("Retry");
    expect(runOrigin({ trigger: "after", cause: { kind: "after", runs: { J1: "J1_s-1", J2: "J2_s-2" } } }, names)).toBe("After prepare, features");
    const file = (n: number) => ({ url: `http://a/landing/sales/${n}.csv`, event_id: `e${n}`, at: "2026-12-01T00:00:00Z" });
    expect(runOrigin({ trigger: "file_arrival", cause: { kind: "file_arrival", files: [file(1), file(2), file(3)] } })).toBe("3 files");
    expect(runOrigin({ trigger: "file_arrival", cause: { kind: "file_arrival", files: [file(1)] } })).toBe("1 file");
    expect(runOrigin({ trigger: "webhook", cause: { kind: "webhook", idempotency_key: "order-42", payload: {} } })).toBe("Webhook order-42");
  });
  it("has details to show only when the cause says more", () => {
    expect(hasCauseDetails({ cause: null })).toBe(false);
    expect(hasCauseDetails({ cause: { kind: "webhook", idempotency_key: "k", payload: {} } })).toBe(true);
    expect(hasCauseDetails({ cause: { kind: "after", runs: {} } })).toBe(false);
  });
  it("names the skipped run a replay ran again: by the server's reason, then by the cause it copied", () => {
    const hook = (key: string) => ({ kind: "webhook" as const, idempotency_key: key, payload: {} });
    const files = (...ids: string[]) => ({
      kind: "file_arrival" as const,
      files: ids.map((id) => ({ url: `http://a/landing/${id}.csv`, event_id: id, at: "2026-12-01T00:00:00Z" })),
    });
    const skippedHook = { run_key: "h-1-a", trigger: "webhook" as const, cause: hook("k1"), state: "SKIPPED" as const, reason: "paused" };
    const skippedFiles = { run_key: "f-1-b", trigger: "file_arrival" as const, cause: files("e2", "e1"), state: "SKIPPED" as const, reason: "paused" };
    const runs = [skippedHook, skippedFiles];
    // while it waits to start, the server says so (and who asked)
    expect(replayInWords({ run_key: "h-2-c", trigger: "webhook", cause: hook("k1"), state: "SCHEDULED", reason: "replay of h-1-a by Ada" }, [])).toBe(
      "replay of h-1-a by Ada",
    );
    // once started its reason is gone; the same key or the same events as a paused skip tell
    expect(replayInWords({ run_key: "h-2-c", trigger: "webhook", cause: hook("k1"), state: "SUCCEEDED", reason: "" }, runs)).toBe("replay of h-1-a");
    expect(replayInWords({ run_key: "f-2-d", trigger: "file_arrival", cause: files("e1", "e2"), state: "RUNNING", reason: "" }, runs)).toBe(
      "replay of f-1-b",
    );
    expect(replayInWords({ run_key: "f-2-d", trigger: "file_arrival", cause: files("e1"), state: "RUNNING", reason: "" }, runs)).toBeNull();
    expect(replayInWords({ run_key: "h-2-c", trigger: "webhook", cause: hook("k2"), state: "FAILED", reason: "attempt 1 failed" }, runs)).toBeNull();
    expect(replayInWords(skippedHook, runs)).toBeNull();
    // a skip for another reason (overlap) is not one a replay runs again
    expect(
      replayInWords({ run_key: "h-2-c", trigger: "webhook", cause: hook("k1"), state: "SUCCEEDED", reason: null }, [{ ...skippedHook, reason: "overlap" }]),
    ).toBeNull();
  });
});

describe("the form's triggers", () => {
  it("turn minutes and seconds into ISO-8601, none being PT0S", () => {
    expect(durationIso({ amount: "1", unit: "minutes" })).toBe("PT1M");
    expect(durationIso({ amount: "90", unit: "seconds" })).toBe("PT90S");
    expect(durationIso({ amount: "", unit: "minutes" })).toBe("PT0S");
    expect(durationIso({ amount: "0", unit: "hours" })).toBe("PT0S");
    expect(durationIso({ amount: "1.5", unit: "minutes" })).toBeNull();
  });
  it("send exactly what was entered, and read back as entered", () => {
    const draft = { ...emptyFileDraft(), container: " landing ", prefix: "sales/", suffix: ".parquet", wait: { amount: "1", unit: "minutes" as const }, gap: { amount: "5", unit: "minutes" as const } };
    expect(triggerOf(draft)).toEqual(SALES);
    expect(triggerOf(draftOf(SALES))).toEqual(SALES);
    expect(draftOf({ ...SALES, wait_after_last_change: "PT0S", min_time_between_triggers: "PT2H" })).toMatchObject({
      wait: { amount: "0", unit: "minutes" },
      gap: { amount: "2", unit: "hours" },
    });
    expect(triggerOf({ ...draft, account: "acct" })).toMatchObject({ account: "acct" });
    expect(triggerOf({ kind: "webhook" })).toEqual({ kind: "webhook" });
    const after = { kind: "after" as const, jobs: ["J1"], condition: "all_done" as const, within: "PT6H" };
    expect(triggerOf(draftOf(after))).toEqual(after);
  });
  it("are checked in the browser for what the server would refuse anyway", () => {
    const ok = { ...emptyFileDraft(), container: "landing" };
    expect(checkTriggers([ok, { kind: "webhook" }])).toEqual({});
    expect(checkTriggers([{ kind: "webhook" }, { ...ok, wait: { amount: "61", unit: "minutes" }, gap: { amount: "x", unit: "minutes" } }])).toEqual({
      "triggers.1.wait_after_last_change": "At most 1 hour.",
      "triggers.1.min_time_between_triggers": "A whole number (0 for none).",
    });
    expect(checkTriggers([{ kind: "webhook" }, { kind: "webhook" }])).toEqual({ triggers: "A job has at most one webhook trigger." });
    expect(checkForm({ ...emptyForm("UTC"), triggers: [{ ...ok, gap: { amount: "2", unit: "days" } }] })).toEqual({
      "triggers.0.min_time_between_triggers": "At most 1 day.",
    });
  });
  it("show the server's errors at their fields, in words", () => {
    expect(triggerError("triggers.1.file_arrival.container", "String should match pattern '^[a-z0-9]...'")).toEqual([
      "triggers.1.container",
      "Not a container name: 3 to 63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit.",
    ]);
    expect(triggerError("triggers.0.file_arrival.wait_after_last_change", "Input should be less than or equal to 1 hour")).toEqual([
      "triggers.0.wait_after_last_change",
      "Input should be less than or equal to 1 hour",
    ]);
    expect(triggerError("triggers", "a job has at most one webhook trigger")).toEqual(["triggers", "a job has at most one webhook trigger"]);
    expect(triggerError("triggers.2", "unknown job")).toEqual(["triggers.2", "unknown job"]);
    expect(triggerError("schedule.cron", "x")).toBeNull();
    expect(
      fieldErrors({ "triggers.0.file_arrival.account": "String should match pattern 'x'", "schedule.cron": "bad cron" }),
    ).toEqual({ "triggers.0.account": "Not a storage account name: 3 to 24 lowercase letters and digits.", cron: "bad cron" });
  });
  it("make a job without a schedule, with the paused choice", () => {
    const form = { ...emptyForm("UTC"), jobId: "1", scheduled: false, recordSkipped: true, triggers: [draftOf(SALES), { kind: "webhook" as const }] };
    expect(bodyOf(form)).toMatchObject({ schedule: null, record_skipped_while_paused: true, triggers: [SALES, { kind: "webhook" }] });
    expect(bodyOf({ ...form, triggers: [] })).toMatchObject({ schedule: null, triggers: [] });
  });
  it("come back from a job for editing, every kind kept", () => {
    const triggers: JobTrigger[] = [{ kind: "after", jobs: ["J1"], condition: "all_succeeded", within: "PT12H" }, SALES, { kind: "webhook" }];
    const job = {
      job_id: "J9",
      name: "load",
      job_type: "other",
      description: "",
      task: { kind: "databricks_job", job_id: 7 },
      schedule: null,
      triggers,
      record_skipped_while_paused: true,
      catch_up_window: "PT1H",
    } as unknown as Job;
    const form = formFromJob(job);
    expect(form.scheduled).toBe(false);
    expect(form.recordSkipped).toBe(true);
    expect(bodyOf(form, job)).toMatchObject({ schedule: null, triggers, record_skipped_while_paused: true, catch_up_window: "PT1H" });
  });
});

describe("webhook calls", () => {
  it("take a JSON object of strings, numbers and booleans", () => {
    expect(parseParameters("")).toEqual({ ok: true, value: {} });
    expect(parseParameters('{"model": "churn", "full": true, "n": 3}')).toEqual({ ok: true, value: { model: "churn", full: true, n: 3 } });
    expect(parseParameters("{model: churn}")).toMatchObject({ ok: false, error: expect.stringMatching(/^Not valid JSON/) });
    expect(parseParameters('["a"]')).toMatchObject({ ok: false, error: expect.stringMatching(/JSON object is expected/) });
    expect(parseParameters('{"a": {"b": 1}}')).toEqual({ ok: false, error: '"a" must be a string, number or boolean.' });
    expect(parseParameters('{"a": null}')).toEqual({ ok: false, error: '"a" must be a string, number or boolean.' });
    expect(parseParameters('{"1a": "x"}')).toMatchObject({ ok: false, error: expect.stringMatching(/not a parameter name/) });
    const many = JSON.stringify(Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, i])));
    expect(parseParameters(many)).toEqual({ ok: false, error: "At most 64 parameters (65 given)." });
  });
  it("need an Idempotency-Key of printable ASCII, a fresh UUID by default", () => {
    expect(checkIdempotencyKey("order-42")).toBe("");
    expect(checkIdempotencyKey("")).toMatch(/^Required/);
    expect(checkIdempotencyKey(" lead")).toMatch(/printable/i);
    expect(checkIdempotencyKey("clé")).toMatch(/printable/i);
    expect(checkIdempotencyKey("x".repeat(256))).toMatch(/255/);
    const key = newIdempotencyKey();
    expect(key).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(newIdempotencyKey()).not.toBe(key);
  });
  it("are shown as an absolute URL and a curl command", () => {
    const url = webhookUrl("https://sched.example.com/", "01KAB");
    expect(url).toBe("https://sched.example.com/api/jobs/01KAB/trigger");
    expect(curlExample(url, `{"note": "it's"}`, "order-42")).toBe(
      [
        "curl -X POST 'https://sched.example.com/api/jobs/01KAB/trigger' \\",
        '  -H "Idempotency-Key: order-42" \\',
        "  -H 'Content-Type: application/json' \\",
        `  -d '{"note": "it'\\''s"}'`,
      ].join("\n"),
    );
    expect(curlExample(url)).toContain('-H "Idempotency-Key: $(uuidgen)"');
  });
});
