import { useQuery } from "@tanstack/react-query";
import { type KeyboardEvent, useRef } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router-dom";

import { api, call } from "../api/client";
import { BatchForm } from "../components/BatchForm";
import { ErrorAlert } from "../components/ErrorAlert";
import { taskInWords } from "../components/JobDetails";
import { useRefresh } from "../components/JobActions";
import { useAnnounce } from "../components/Status";
import { TableWrap } from "../components/TableWrap";
import { TemplateEditor } from "../components/TemplateEditor";
import { TemplateJobForm } from "../components/TemplateJobForm";
import { inWords } from "../lib/duration";
import { needInWords, type Template, valueText } from "../lib/templates";
import { formatInstant } from "../lib/time";
import { batchPath } from "./BatchesPage";
import { jobTypeLabel, templatePath } from "./TemplatesPage";

function ParametersTable({ template }: { template: Template }) {
  const parameters = template.parameters ?? [];
  if (parameters.length === 0) return <p className="muted">None: every job made from it runs the same task.</p>;
  return (
    <TableWrap label="Parameters, scrolls sideways">
      <table aria-label="Parameters" className="parameters">
        <thead>
          <tr>
            <th scope="col">Parameter</th>
            <th scope="col">Type</th>
            <th scope="col">Required or default</th>
            <th scope="col">Options</th>
            <th scope="col">Description</th>
          </tr>
        </thead>
        <tbody>
          {parameters.map((p) => (
            <tr key={p.name}>
              <th scope="row" className="name">
                <code>{p.name}</code>
              </th>
              <td>{p.type}</td>
              <td>{needInWords(p)}</td>
              <td>{p.type === "enum" ? (p.options ?? []).map(valueText).join(", ") : <span className="muted">—</span>}</td>
              <td>{p.description || <span className="muted">—</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </TableWrap>
  );
}

/** The task (as a job's page says it) and the policies every job made from it has. */
function TemplateFacts({ template: t }: { template: Template }) {
  const retry = t.retry;
  return (
    <dl className="facts" aria-label="Task and policies">
      <dt>Task</dt>
      <dd>{taskInWords(t.task)}</dd>
      <dt>Retry</dt>
      <dd>
        {retry && retry.max_attempts > 1
          ? `up to ${retry.max_attempts} attempts, ${inWords(retry.initial_delay)} apart at first`
          : "no retries"}
      </dd>
      <dt>Timeout</dt>
      <dd>{t.timeout ? inWords(t.timeout) : "none"}</dd>
      <dt>Overlap</dt>
      <dd>{t.overlap}</dd>
      <dt>Priority</dt>
      <dd>{t.priority}</dd>
      <dt>Pool</dt>
      <dd>
        {t.pool ?? "default"}, {t.slots ?? 1} {(t.slots ?? 1) === 1 ? "slot" : "slots"} per run
      </dd>
      <dt>Deadline</dt>
      <dd>{t.deadline ? `${inWords(t.deadline)} after the scheduled time` : "none"}</dd>
      <dt>Tags</dt>
      <dd>{(t.tags ?? []).length ? (t.tags ?? []).join(", ") : "none"}</dd>
    </dl>
  );
}

type Tab = "job" | "batch";
const TABS: { value: Tab; label: string }[] = [
  { value: "job", label: "Create a job" },
  { value: "batch", label: "Run a batch" },
];

/** "Create a job" or "Run a batch": tabs (arrow keys move between them), the choice kept in the URL (`?run=batch`). */
function UseTabs({ tab, choose }: { tab: Tab; choose: (tab: Tab) => void }) {
  const refs = useRef<(HTMLButtonElement | null)[]>([]);
  const onKey = (event: KeyboardEvent, i: number) => {
    const next = event.key === "ArrowRight" ? i + 1 : event.key === "ArrowLeft" ? i - 1 : event.key === "Home" ? 0 : event.key === "End" ? TABS.length - 1 : null;
    if (next === null) return;
    event.preventDefault();
    const k = (next + TABS.length) % TABS.length;
    const target = TABS[k];
    if (!target) return;
    choose(target.value);
    refs.current[k]?.focus();
  };
  return (
    <div role="tablist" aria-label="Use this template" className="tabs">
      {TABS.map((t, i) => (
        <button
          key={t.value}
          ref={(el) => {
            refs.current[i] = el;
          }}
          type="button"
          role="tab"
          id={`tab-${t.value}`}
          aria-selected={tab === t.value}
          aria-controls={`panel-${t.value}`}
          tabIndex={tab === t.value ? 0 : -1}
          className={tab === t.value ? "tab tab-selected" : "tab"}
          onClick={() => choose(t.value)}
          onKeyDown={(e) => onKey(e, i)}
        >
          {t.label}
        </button>
      ))}
    </div>
  );
}

export function TemplatePage() {
  const { name = "" } = useParams();
  const [search, setSearch] = useSearchParams();
  const tab: Tab = search.get("run") === "batch" ? "batch" : "job";
  const chooseTab = (next: Tab) =>
    setSearch(
      (current) => {
        const out = new URLSearchParams(current);
        if (next === "batch") out.set("run", "batch");
        else out.delete("run");
        return out;
      },
      { replace: true },
    );
  const asked = Number(search.get("version")) || undefined;
  const navigate = useNavigate();
  const announce = useAnnounce();
  const refresh = useRefresh();
  const template = useQuery({
    queryKey: ["template", name, asked ?? null],
    queryFn: () =>
      call(api.GET("/api/templates/{name}", { params: { path: { name }, query: asked ? { version: asked } : {} } })),
  });

  if (template.isPending) return <p>Loading…</p>;
  if (template.isError)
    return (
      <>
        <h1>Template {name}</h1>
        <ErrorAlert error={template.error} onRetry={() => void template.refetch()} />
        <p>
          <Link to="/templates">All templates</Link>
        </p>
      </>
    );
  const t = template.data;
  return (
    <>
      <p className="muted">
        <Link to="/templates">Templates</Link> / {t.name}
      </p>
      <h1>{t.name}</h1>
      <p className="muted">
        {jobTypeLabel(t.job_type)} · version {t.version} · updated {formatInstant(t.updated_at)} by {t.updated_by.name}
      </p>
      {asked && (
        <p className="note">
          This is version {t.version} as it was asked for; <Link to={templatePath(t.name)}>the newest version</Link> may
          differ.
        </p>
      )}
      {t.description && <p>{t.description}</p>}
      <section aria-labelledby="parameters-heading">
        <h2 id="parameters-heading">Parameters</h2>
        <ParametersTable template={t} />
      </section>
      <section aria-labelledby="task-heading">
        <h2 id="task-heading">Task and policies</h2>
        <TemplateFacts template={t} />
        <p className="hint">
          Each <code>{"{{params.<name>}}"}</code> in the task is replaced by the job&apos;s value for that parameter (a
          checkbox by <code>true</code> or <code>false</code>).
        </p>
      </section>
      <UseTabs tab={tab} choose={chooseTab} />
      <div role="tabpanel" id={`panel-${tab}`} aria-labelledby={`tab-${tab}`} className="tab-panel">
        {tab === "job" ? (
          <TemplateJobForm
            key={`${t.name}-${t.version}`}
            template={t}
            onCreated={(created) => {
              announce(`Created job ${created.name} from template ${t.name} v${t.version}`);
              void refresh();
              navigate(`/jobs/${encodeURIComponent(created.jobId)}`);
            }}
          />
        ) : (
          <BatchForm
            key={`${t.name}-${t.version}`}
            template={t}
            onCreated={(created) => {
              announce(`Started batch ${created.name} of ${created.size} ${created.size === 1 ? "point" : "points"} from template ${t.name} v${t.version}`);
              void refresh();
              navigate(batchPath(created.batchId));
            }}
          />
        )}
      </div>
      {!asked && <TemplateEditor template={t} />}
    </>
  );
}
