import { useState } from "react";
import { Link } from "react-router-dom";

import { api, call } from "../api/client";
import { useRefresh } from "../components/JobActions";
import { JobForm } from "../components/JobForm";
import { bodyOf, emptyForm, type FormState } from "../lib/form";
import { browserZone, formatInstant } from "../lib/time";

interface Scheduled {
  jobId: string;
  name: string;
  nextFireAt: string | null;
  zone: string;
  /** Without a schedule: what starts it instead, in words. */
  otherwise: string | null;
}

export function NewJobPage() {
  const refresh = useRefresh();
  const [done, setDone] = useState<Scheduled | null>(null);
  const [generation, setGeneration] = useState(0);

  async function schedule(form: FormState) {
    const created = await call(api.POST("/api/jobs/schedule", { body: bodyOf(form) as never }));
    const otherwise = form.scheduled
      ? null
      : form.triggers.length > 0
        ? "It has no schedule: it runs when its triggers fire."
        : "It has no schedule and no triggers: it runs only when asked (Run now).";
    setDone({ jobId: created.job_id, name: form.name, nextFireAt: created.next_fire_at, zone: form.timezone, otherwise });
    void refresh();
  }

  return (
    <>
      <h1>Schedule a job</h1>
      {done && (
        <section className="confirmation" role="status" aria-live="polite">
          <h2>Job scheduled</h2>
          <p>
            <strong>{done.name}</strong> has job id <code>{done.jobId}</code>.{" "}
            {done.otherwise ??
              `Its first run is ${done.nextFireAt ? `${formatInstant(done.nextFireAt)} (${formatInstant(done.nextFireAt, done.zone)})` : "not due: the schedule never fires"}.`}
          </p>
          <p>
            <Link to={`/jobs/${done.jobId}`}>View job</Link>{" "}
            <button
              type="button"
              className="link-button"
              onClick={() => {
                setDone(null);
                setGeneration((g) => g + 1);
              }}
            >
              Schedule another
            </button>
          </p>
        </section>
      )}
      {!done && <JobForm key={generation} initial={emptyForm(browserZone())} submitLabel="Schedule job" onSubmit={schedule} />}
    </>
  );
}
