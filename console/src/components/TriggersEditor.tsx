import type { FieldErrors } from "../lib/form";
import {
  afterInWords,
  emptyFileDraft,
  type FileDraft,
  fileTriggerInWords,
  type TriggerDraft,
  triggerOf,
} from "../lib/triggers";
import { DurationField } from "./DurationField";
import { Field } from "./Field";
import { JobLinks } from "./JobLink";

const TITLE: Record<TriggerDraft["kind"], string> = {
  after: "After other jobs",
  file_arrival: "When files arrive",
  webhook: "When called (webhook)",
};

interface Props {
  drafts: TriggerDraft[];
  scheduled: boolean;
  errors: FieldErrors;
  onChange: (drafts: TriggerDraft[]) => void;
}

/**
 * The triggers of the job form: "When files arrive" (container, prefix, suffix, account, waits) and
 * "When called (webhook)" to add, edit and remove; "After other jobs" kept as they are, removable.
 */
export function TriggersEditor({ drafts, scheduled, errors, onChange }: Props) {
  const hasWebhook = drafts.some((d) => d.kind === "webhook");
  const change = (i: number, draft: TriggerDraft) => onChange(drafts.map((d, j) => (j === i ? draft : d)));
  return (
    <fieldset>
      <legend>Triggers</legend>
      <p className="hint">
        {scheduled ? "Besides its schedule, the job" : "The job"} can start when files arrive in blob storage, or when it
        is called (a webhook). Up to 5 triggers.
      </p>
      {errors.triggers && (
        <div className="field-error" role="alert">
          {errors.triggers}
        </div>
      )}
      {drafts.map((draft, i) => (
        <fieldset className="rows trigger" key={i}>
          <legend>{TITLE[draft.kind]}</legend>
          {errors[`triggers.${i}`] && <div className="field-error">{errors[`triggers.${i}`]}</div>}
          {draft.kind === "file_arrival" && <FileFields draft={draft} index={i} errors={errors} onChange={(d) => change(i, d)} />}
          {draft.kind === "webhook" && (
            <p>
              It runs when <code>POST /api/jobs/{"{job id}"}/trigger</code> is called with an <code>Idempotency-Key</code>{" "}
              header and a JSON object of parameters (each reaches the task as{" "}
              <code>{"{{trigger.payload.<key>}}"}</code>). Once it is saved, the job&apos;s page shows the URL, a curl
              example and a Trigger… button.
            </p>
          )}
          {draft.kind === "after" && (
            <p>
              After <JobLinks ids={draft.kept.jobs} />: {afterInWords(draft.kept)}.{" "}
              <span className="muted">Kept as it is (edited through the API).</span>
            </p>
          )}
          <button type="button" className="link-button" onClick={() => onChange(drafts.filter((_, j) => j !== i))}>
            Remove<span className="visually-hidden"> trigger {i + 1}: {TITLE[draft.kind]}</span>
          </button>
        </fieldset>
      ))}
      <div className="actions wrap">
        <button type="button" onClick={() => onChange([...drafts, emptyFileDraft()])} disabled={drafts.length >= 5}>
          Add “When files arrive”
        </button>
        {!hasWebhook && (
          <button type="button" onClick={() => onChange([...drafts, { kind: "webhook" }])} disabled={drafts.length >= 5}>
            Add “When called (webhook)”
          </button>
        )}
      </div>
      {!scheduled && drafts.length === 0 && (
        <p className="note">
          <strong>No schedule and no triggers:</strong> the job runs only when asked (Run now in the console, or{" "}
          <code>POST /api/jobs/{"{job id}"}/run</code>).
        </p>
      )}
    </fieldset>
  );
}

function FileFields({
  draft,
  index,
  errors,
  onChange,
}: {
  draft: FileDraft;
  index: number;
  errors: FieldErrors;
  onChange: (d: FileDraft) => void;
}) {
  const key = (field: string) => `triggers.${index}.${field}`;
  const text = (label: string, field: "container" | "prefix" | "suffix" | "account", api: string, hint: string) => (
    <Field label={label} error={errors[key(api)]} hint={hint}>
      {(p) => (
        <input
          {...p}
          className="mono"
          value={draft[field]}
          onChange={(e) => onChange({ ...draft, [field]: e.target.value })}
          autoComplete="off"
          spellCheck={false}
        />
      )}
    </Field>
  );
  const sent = triggerOf(draft);
  return (
    <>
      <div className="grid two">
        {text("Container", "container", "container", "The blob container watched, e.g. landing")}
        {text("Storage account (optional)", "account", "account", "Empty: any account whose events reach the scheduler")}
        {text("Prefix", "prefix", "prefix", "Only blobs whose name starts with this, e.g. sales/")}
        {text("Suffix", "suffix", "suffix", "Only blobs whose name ends with this, e.g. .parquet")}
      </div>
      <div className="grid two">
        <DurationField
          label="Wait after last change"
          value={draft.wait}
          error={errors[key("wait_after_last_change")]}
          hint="Files arriving within this of each other start one run; at most 1 hour, 0 for none"
          units={["seconds", "minutes", "hours"]}
          onChange={(wait) => onChange({ ...draft, wait })}
        />
        <DurationField
          label="Minimum time between runs"
          value={draft.gap}
          error={errors[key("min_time_between_triggers")]}
          hint="Files arriving sooner fold into the next run; at most 1 day, 0 for none"
          units={["seconds", "minutes", "hours", "days"]}
          onChange={(gap) => onChange({ ...draft, gap })}
        />
      </div>
      {sent.kind === "file_arrival" && draft.container.trim() !== "" && (
        <p className="reading">
          {fileTriggerInWords(sent)}.
        </p>
      )}
    </>
  );
}
