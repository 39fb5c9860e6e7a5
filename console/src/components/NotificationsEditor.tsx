import { useId } from "react";

import type { DestinationKind } from "../api/types";
import type { FieldErrors } from "../lib/form";
import {
  destinationInWords,
  type DestinationDraft,
  destinationKeys,
  EVENT_LISTS,
  emptyDestination,
  type EventList,
  KINDS,
  type NotificationsDraft,
  quietByDefault,
  wantsWarnAfter,
} from "../lib/notifications";
import { DurationField } from "./DurationField";
import { Field } from "./Field";

const URL_HINT: Record<DestinationKind, string> = {
  webhook: "Where the JSON is posted (https). Pages show only its host.",
  teams:
    "The URL of a Teams workflow “Post to a channel when a webhook request is received” (https). Pages show only its host: the URL holds a token.",
  slack: "A Slack incoming webhook, e.g. https://hooks.slack.com/services/… Pages show only its host: the URL holds a token.",
};

const CHOICES: readonly [keyof NotificationsDraft & ("onlyLastAttempt" | "noSkipped" | "noCancelled"), string, string][] = [
  [
    "onlyLastAttempt",
    "Only alert on the last attempt",
    "A failed attempt that will be retried tells nobody; the failure is told once no retry is left.",
  ],
  ["noSkipped", "No alerts for skipped runs", "Unchecked: a skipped run (paused, overlapping) is told to the Failure destinations."],
  ["noCancelled", "No alerts for cancelled runs", "Unchecked: a cancelled run is told to the Failure destinations."],
];

interface Props {
  draft: NotificationsDraft;
  errors: FieldErrors;
  /** `moved`: a destination was removed or changed its event (its errors would land on another). */
  onChange: (draft: NotificationsDraft, moved: boolean) => void;
}

/**
 * The job form's notifications: destinations (an event, a kind, a URL and, for a webhook, the
 * signing secret's name) added, edited and removed; the duration warning's threshold once one
 * wants it; and which failures alert. Nothing but the button while there is none.
 */
export function NotificationsEditor({ draft, errors, onChange }: Props) {
  const uid = useId();
  const keys = destinationKeys(draft.destinations);
  const set = (patch: Partial<NotificationsDraft>, moved = false) => onChange({ ...draft, ...patch }, moved);
  const change = (i: number, d: DestinationDraft) => {
    const before = draft.destinations[i];
    set({ destinations: draft.destinations.map((x, j) => (j === i ? d : x)) }, before?.event !== d.event);
  };
  const showChoices = draft.destinations.length > 0 || !quietByDefault(draft);
  const listErrors = EVENT_LISTS.map(({ list }) => errors[`notifications.${list}`]).filter(Boolean);
  return (
    <fieldset>
      <legend>Notifications</legend>
      <p className="hint">
        Who is told about its runs: a webhook (JSON), a Microsoft Teams channel or Slack, when a run starts, succeeds,
        fails, misses its deadline or runs too long. Up to 5 destinations per event.
      </p>
      {draft.destinations.length === 0 && <p className="muted">None: nobody is told about its runs.</p>}
      {(errors.notifications || listErrors.length > 0) && (
        <div className="field-error" role="alert">
          {[errors.notifications, ...listErrors].filter(Boolean).join(" ")}
        </div>
      )}
      {draft.destinations.map((d, i) => (
        <DestinationFields
          key={i}
          draft={d}
          index={i}
          errorKey={keys[i] ?? ""}
          errors={errors}
          onChange={(x) => change(i, x)}
          onRemove={() => set({ destinations: draft.destinations.filter((_, j) => j !== i) }, true)}
        />
      ))}
      <div className="actions wrap">
        <button type="button" onClick={() => set({ destinations: [...draft.destinations, emptyDestination()] })}>
          Add notification
        </button>
      </div>
      {wantsWarnAfter(draft) && (
        <div className="grid">
          <DurationField
            label="Duration warning after"
            value={draft.warnAfter}
            error={errors["notifications.duration_warning_after"]}
            hint="A run still running this long after it started is told to the Duration warning destinations; 1 minute to 7 days"
            units={["minutes", "hours", "days"]}
            onChange={(warnAfter) => set({ warnAfter })}
          />
        </div>
      )}
      {showChoices && (
        <div className="choices">
          {CHOICES.map(([key, label, help]) => (
            <div key={key} className="radio choice">
              <input
                type="checkbox"
                id={`${uid}-${key}`}
                checked={draft[key]}
                onChange={(e) => set({ [key]: e.target.checked } as Partial<NotificationsDraft>)}
                aria-describedby={`${uid}-${key}-help`}
              />
              <div>
                <label htmlFor={`${uid}-${key}`}>{label}</label>
                <div className="hint" id={`${uid}-${key}-help`}>
                  {help}
                </div>
              </div>
            </div>
          ))}
        </div>
      )}
    </fieldset>
  );
}

function DestinationFields({
  draft,
  index,
  errorKey,
  errors,
  onChange,
  onRemove,
}: {
  draft: DestinationDraft;
  index: number;
  errorKey: string;
  errors: FieldErrors;
  onChange: (d: DestinationDraft) => void;
  onRemove: () => void;
}) {
  const event = EVENT_LISTS.find((e) => e.list === draft.event);
  const line = draft.url.trim() !== "" ? `${event?.label ?? draft.event} → ${destinationInWords(draft)}` : "";
  return (
    <fieldset className="rows notification">
      <legend>Notification {index + 1}</legend>
      {errors[errorKey] && <div className="field-error">{errors[errorKey]}</div>}
      <div className="grid two">
        <Field label="Event" hint={event?.help}>
          {(p) => (
            <select {...p} value={draft.event} onChange={(e) => onChange({ ...draft, event: e.target.value as EventList })}>
              {EVENT_LISTS.map((e) => (
                <option key={e.list} value={e.list}>
                  {e.label}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Kind" error={errors[`${errorKey}.kind`]}>
          {(p) => (
            <select {...p} value={draft.kind} onChange={(e) => onChange({ ...draft, kind: e.target.value as DestinationKind })}>
              {KINDS.map((k) => (
                <option key={k.kind} value={k.kind}>
                  {k.label}
                </option>
              ))}
            </select>
          )}
        </Field>
      </div>
      <Field label="URL" error={errors[`${errorKey}.url`]} hint={URL_HINT[draft.kind]}>
        {(p) => (
          <input
            {...p}
            type="url"
            inputMode="url"
            className="mono"
            value={draft.url}
            onChange={(e) => onChange({ ...draft, url: e.target.value })}
            autoComplete="off"
            spellCheck={false}
          />
        )}
      </Field>
      {draft.kind === "webhook" && (
        <Field
          label="Signing secret"
          error={errors[`${errorKey}.secret_ref`]}
          hint="Optional: the name of a signing secret the platform team set up (lowercase letters, digits, hyphens). Each body is then signed (X-Scheduler-Signature: HMAC-SHA256)."
        >
          {(p) => (
            <input
              {...p}
              className="mono"
              value={draft.secretRef}
              onChange={(e) => onChange({ ...draft, secretRef: e.target.value })}
              autoComplete="off"
              spellCheck={false}
            />
          )}
        </Field>
      )}
      {line && <p className="reading">{line}</p>}
      <button type="button" className="link-button" onClick={onRemove}>
        Remove<span className="visually-hidden"> notification {index + 1}</span>
      </button>
    </fieldset>
  );
}
