import { useQuery } from "@tanstack/react-query";
import { Link } from "react-router-dom";

import { api, call } from "../api/client";
import { JOB_TYPES } from "../api/types";
import { ErrorAlert } from "../components/ErrorAlert";
import { TableWrap } from "../components/TableWrap";
import type { Template } from "../lib/templates";
import { formatInstant } from "../lib/time";

/** A template's page: `/templates/{name}` (a past version: `?version=n`). */
export const templatePath = (name: string, version?: number) =>
  `/templates/${encodeURIComponent(name)}${version ? `?version=${version}` : ""}`;

export const jobTypeLabel = (value: string) => JOB_TYPES.find((t) => t.value === value)?.label ?? value;

export function TemplatesTable({ templates }: { templates: Template[] }) {
  return (
    <TableWrap label="Templates, scrolls sideways">
      <table aria-label="Templates" className="templates">
        <thead>
          <tr>
            <th scope="col">Template</th>
            <th scope="col">Description</th>
            <th scope="col">Job type</th>
            <th scope="col">Parameters</th>
            <th scope="col">Version</th>
            <th scope="col">Updated</th>
          </tr>
        </thead>
        <tbody>
          {templates.map((t) => (
            <tr key={t.name}>
              <th scope="row" className="name">
                <Link to={templatePath(t.name)}>{t.name}</Link>
              </th>
              <td>{t.description || <span className="muted">none</span>}</td>
              <td>{jobTypeLabel(t.job_type)}</td>
              <td>{(t.parameters ?? []).length}</td>
              <td>v{t.version}</td>
              <td className="muted small changed">
                {formatInstant(t.updated_at)} by {t.updated_by.name}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </TableWrap>
  );
}

export function TemplatesPage() {
  const templates = useQuery({ queryKey: ["templates"], queryFn: () => call(api.GET("/api/templates")) });
  const items = templates.data?.items ?? [];
  return (
    <>
      <h1>Templates</h1>
      <p className="muted">
        A template is a job&apos;s task and policies with typed parameters: open one to make a job from it with your own
        values, name and schedule.
      </p>
      {templates.isError && <ErrorAlert error={templates.error} onRetry={() => void templates.refetch()} />}
      {templates.isPending && <p>Loading…</p>}
      {templates.data && items.length === 0 && (
        <div className="empty">
          <p>
            <strong>No templates yet.</strong>
          </p>
          <p>
            Templates are made through the API: <code>POST /api/templates</code> (see <a href="/api/docs">the API docs</a>).
          </p>
        </div>
      )}
      {items.length > 0 && <TemplatesTable templates={items} />}
    </>
  );
}
