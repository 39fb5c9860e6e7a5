import { describe, expect, it } from "vitest";

import { readCron, scheduleInWords } from "./cron";
import { fromIso, inWords, toIso } from "./duration";
import { bodyOf, checkForm, emptyForm, fieldErrors, formFromJob } from "./form";
import { formatEstimate, formatWait, isoToZoned, zonedToIso } from "./time";

describe("cron reading", () => {
  it("reads a daily time in words", () => {
    expect(readCron("30 2 * * *")).toEqual({ ok: true, text: "At 02:30 AM" });
    expect(readCron("0 6 * * 1-5").text).toBe("At 06:00 AM, Monday through Friday");
  });
  it("says what is wrong with what is not cron", () => {
    expect(readCron("")).toEqual({ ok: false, text: "" });
    expect(readCron("30 2 * *")).toEqual({ ok: false, text: "A cron expression has five fields" });
    expect(readCron("nope nope * * *").ok).toBe(false);
  });
  it("describes every kind of schedule", () => {
    expect(scheduleInWords({ cron: "30 1 * * *", timezone: "Europe/Paris" })).toBe("At 01:30 AM (Europe/Paris)");
    expect(scheduleInWords({ every: "PT15M", timezone: "UTC" })).toBe("Every 15 minutes");
    expect(scheduleInWords(null, [{ kind: "after" }])).toBe("No schedule: runs after other jobs");
    expect(scheduleInWords(null)).toBe("No schedule");
    expect(scheduleInWords({ at: "2027-01-04T08:00:00Z", timezone: "Europe/Paris" })).toMatch(/^Once at Jan 4, 2027, 9:00 AM GMT\+1$/);
  });
});

describe("duration fields", () => {
  it("turn an amount and a unit into ISO-8601", () => {
    expect(toIso({ amount: "15", unit: "minutes" })).toBe("PT15M");
    expect(toIso({ amount: "2", unit: "hours" })).toBe("PT2H");
    expect(toIso({ amount: "1", unit: "days" })).toBe("P1D");
    expect(toIso({ amount: " ", unit: "days" })).toBe("");
    expect(toIso({ amount: "1.5", unit: "hours" })).toBeNull();
  });
  it("read ISO-8601 back in the largest exact unit", () => {
    expect(fromIso("PT90M")).toEqual({ amount: "90", unit: "minutes" });
    expect(fromIso("PT2H")).toEqual({ amount: "2", unit: "hours" });
    expect(fromIso("P1DT12H")).toEqual({ amount: "36", unit: "hours" });
    expect(fromIso("PT45S")).toEqual({ amount: "45", unit: "seconds" });
    expect(fromIso(null, "hours")).toEqual({ amount: "", unit: "hours" });
    expect(inWords("PT1H")).toBe("1 hour");
  });
});

describe("wall-clock times in a zone", () => {
  it("carry the zone's offset at that date", () => {
    expect(zonedToIso("2027-03-13T01:30", "America/New_York")).toBe("2027-03-13T01:30:00-05:00");
    expect(zonedToIso("2027-03-15T01:30", "America/New_York")).toBe("2027-03-15T01:30:00-04:00");
    expect(zonedToIso("2027-07-01T12:00", "Asia/Kolkata")).toBe("2027-07-01T12:00:00+05:30");
  });
  it("move a time the zone skips forward by the gap", () => {
    expect(zonedToIso("2027-03-14T02:30", "America/New_York")).toBe("2027-03-14T03:30:00-04:00");
  });
  it("refuse what is not a time or not a zone", () => {
    expect(zonedToIso("2027-03-14", "UTC")).toBeNull();
    expect(zonedToIso("2027-03-14T02:30", "Mars/Olympus")).toBeNull();
  });
  it("round-trip for pre-filling a form", () => {
    expect(isoToZoned("2027-03-15T05:30:00Z", "America/New_York")).toBe("2027-03-15T01:30");
  });
});

describe("the form's body", () => {
  it("maps parameter rows to a mapping, dropping empty names", () => {
    const form = {
      ...emptyForm("UTC"),
      name: " churn ",
      jobId: "123",
      cron: "30 1 * * *",
      pairs: [
        { key: "run_date", value: "{{scheduled_date}}" },
        { key: " ", value: "ignored" },
      ],
      tags: "churn, nightly ,",
    };
    const body = bodyOf(form);
    expect(body.name).toBe("churn");
    expect(body.task).toEqual({ kind: "databricks_job", job_id: 123, parameters: { run_date: "{{scheduled_date}}" } });
    expect(body.schedule).toEqual({ timezone: "UTC", cron: "30 1 * * *" });
    expect(body.tags).toEqual(["churn", "nightly"]);
    expect(body.retry).toEqual({ max_attempts: 1, initial_delay: "PT1M" });
    expect(body.timeout).toBeNull();
  });
  it("builds a one-off python file run with arguments on an existing cluster", () => {
    const form = { ...emptyForm("UTC"), taskKind: "databricks_run" as const, runWhat: "python_file" as const };
    Object.assign(form, { pythonFile: "dbfs:/jobs/train.py", args: ["--full"], clusterId: "c-1", scheduleKind: "every", every: { amount: "2", unit: "hours" } });
    const body = bodyOf(form);
    expect(body.task).toEqual({ kind: "databricks_run", python_file: "dbfs:/jobs/train.py", parameters: ["--full"], existing_cluster_id: "c-1" });
    expect(body.schedule).toEqual({ timezone: "UTC", every: "PT2H" });
  });
  it("keeps what the form does not show when editing", () => {
    const job = {
      job_id: "01KAB3X9M2Q8Z0C7D5E4F6G1H2",
      name: "n",
      job_type: "pipeline",
      description: "",
      task: { kind: "databricks_job", job_id: 7, parameters: { a: "1" } },
      schedule: { cron: "0 5 * * *", timezone: "UTC", start_at: "2027-01-01T00:00:00Z" },
      retry: { max_attempts: 3, initial_delay: "PT2M", backoff_coefficient: 3, max_delay: "PT1H", jitter: 0, retry_on_timeout: false, retry_on: "any" },
      timeout: "PT2H",
      overlap: "allow",
      misfire: "catch_up",
      catch_up_window: "PT6H",
      priority: "high",
      tags: ["x"],
      record_skipped_while_paused: true,
    } as unknown as Parameters<typeof formFromJob>[0];
    const form = formFromJob(job);
    expect(form.pairs).toEqual([{ key: "a", value: "1" }]);
    expect(form.start).toBe("2027-01-01T00:00");
    expect(form.timeout).toEqual({ amount: "2", unit: "hours" });
    const body = bodyOf({ ...form, maxAttempts: "5" }, job);
    expect(body).toMatchObject({
      catch_up_window: "PT6H",
      record_skipped_while_paused: true,
      retry: { max_attempts: 5, backoff_coefficient: 3, max_delay: "PT1H", initial_delay: "PT2M" },
      timeout: "PT2H",
      schedule: { cron: "0 5 * * *", timezone: "UTC", start_at: "2027-01-01T00:00:00+00:00" },
    });
  });
});

describe("errors", () => {
  it("map the server's body paths to the form's fields", () => {
    expect(
      fieldErrors({
        "schedule.cron": "invalid cron expression",
        "task.job_id": "Input should be greater than 0",
        "task.cluster.num_workers": "too many",
        "tags.3": "bad tag",
        schedule: "'end_at' must be after 'start_at'",
        unheard: "of",
      }),
    ).toEqual({
      cron: "invalid cron expression",
      jobId: "Input should be greater than 0",
      workers: "too many",
      tags: "bad tag",
      end: "'end_at' must be after 'start_at'",
      form: "of",
    });
  });
  it("catch an end before the start in the browser", () => {
    const form = { ...emptyForm("UTC"), start: "2027-03-12T00:00", end: "2027-03-01T00:00" };
    expect(checkForm(form)).toEqual({ end: "The end must be after the start." });
    expect(checkForm({ ...form, end: "2027-03-13T00:00" })).toEqual({});
  });
});

describe("a repeated hour", () => {
  it("is read as its first occurrence", () => {
    expect(zonedToIso("2027-11-07T01:30", "America/New_York")).toBe("2027-11-07T01:30:00-04:00");
  });
});

describe("waits", () => {
  it("read as at most two units", () => {
    expect(formatWait(0)).toBe("0s");
    expect(formatWait(45.7)).toBe("45s");
    expect(formatWait(150)).toBe("2m 30s");
    expect(formatWait(3600)).toBe("1h");
    expect(formatWait(3725)).toBe("1h 2m");
    expect(formatWait(90_061)).toBe("1d 1h");
    expect(formatWait(172_800 + 59)).toBe("2d");
  });
  it("never go negative or read garbage", () => {
    expect(formatWait(-3)).toBe("0s");
    expect(formatWait(Number.NaN)).toBe("0s");
    expect(formatWait(null)).toBe("0s");
  });
  it("give an estimated start as a time, approximately", () => {
    const now = Date.parse("2027-03-15T12:00:00Z");
    expect(formatEstimate(null, now)).toBe("unknown");
    expect(formatEstimate("2027-03-15T11:59:00Z", now)).toBe("~now");
    expect(formatEstimate("2027-03-15T12:05:00Z", now)).toMatch(/^~\d{1,2}:05\s[AP]M$/);
    expect(formatEstimate("2027-03-20T12:05:00Z", now)).toMatch(/^~Mar 2\d, \d{1,2}:05\s[AP]M$/);
  });
});

describe("capacity fields", () => {
  it("go in the body: pool, slots as a number, deadline as ISO-8601 or null", () => {
    const form = { ...emptyForm("UTC"), jobId: "1", cron: "0 1 * * *" };
    expect(bodyOf(form)).toMatchObject({ pool: "default", slots: 1, deadline: null });
    const gpu = bodyOf({ ...form, pool: " gpu ", slots: "4", deadline: { amount: "6", unit: "hours" } });
    expect(gpu).toMatchObject({ pool: "gpu", slots: 4, deadline: "PT6H" });
    // what is not a whole number goes as typed, for the server to explain
    expect(bodyOf({ ...form, slots: "two", deadline: { amount: "1.5", unit: "hours" } })).toMatchObject({ slots: "two", deadline: "1.5" });
  });
  it("come back from a job for editing", () => {
    const job = {
      name: "n",
      job_type: "pipeline",
      task: { kind: "databricks_job", job_id: 7 },
      schedule: { cron: "0 5 * * *", timezone: "UTC" },
      pool: "gpu",
      slots: 2,
      deadline: "P1D",
    } as unknown as Parameters<typeof formFromJob>[0];
    const form = formFromJob(job);
    expect([form.pool, form.slots, form.deadline]).toEqual(["gpu", "2", { amount: "1", unit: "days" }]);
  });
  it("show the server's errors beside them", () => {
    expect(fieldErrors({ pool: "unknown pool 'gpu'", slots: "Input should be less than or equal to 1000", deadline: "at least PT1M" })).toEqual({
      pool: "unknown pool 'gpu'",
      slots: "Input should be less than or equal to 1000",
      deadline: "at least PT1M",
    });
  });
});
