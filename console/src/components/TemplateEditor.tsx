import { useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";

import { ApiError, api, call } from "../api/client";
import { specOf, type Template } from "../lib/templates";
import { ErrorAlert } from "./ErrorAlert";
import { Field } from "./Field";
import { useAnnounce } from "./Status";

/**
 * "Edit as JSON": the template's definition in a text area, saved as a new version with
 * `If-Match` (refused with 412 when someone saved another version first). Templates are mostly made
 * and changed through the API; this is for a quick fix.
 */
export function TemplateEditor({ template }: { template: Template }) {
  const client = useQueryClient();
  const announce = useAnnounce();
  const [open, setOpen] = useState(false);
  const [text, setText] = useState("");
  const [error, setError] = useState<string | undefined>();
  const [failure, setFailure] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const start = () => {
    setText(JSON.stringify(specOf(template), null, 2));
    setError(undefined);
    setFailure(null);
    setOpen(true);
  };

  async function save(event: FormEvent) {
    event.preventDefault();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (err) {
      setError(`Not JSON: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    setError(undefined);
    setFailure(null);
    setBusy(true);
    try {
      const saved = await call(
        api.PUT("/api/templates/{name}", {
          params: { path: { name: template.name }, header: { "If-Match": `"v${template.version}"` } },
          body: body as never,
        }),
      );
      setOpen(false);
      announce(`Saved template ${saved.name} as version ${saved.version}`);
      void client.invalidateQueries({ queryKey: ["template"] });
      void client.invalidateQueries({ queryKey: ["templates"] });
    } catch (err) {
      if (err instanceof ApiError && err.status === 412) {
        // Their version shows instead; editing again starts from it (never saved over it).
        setOpen(false);
        setFailure(new Error("Someone saved another version of this template since you opened it: it shows now; edit it again to make your change."));
        void client.invalidateQueries({ queryKey: ["template"] });
        void client.invalidateQueries({ queryKey: ["templates"] });
      }      else if (err instanceof ApiError && Object.keys(err.errors).length > 0)
        setFailure(new Error(`${err.message} (${Object.entries(err.errors).map(([k, v]) => `${k}: ${v}`).join("; ")})`));
      else setFailure(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section aria-labelledby="edit-template-heading">
      <h2 id="edit-template-heading">Change the template</h2>
      {!open && <ErrorAlert error={failure} />}
      {!open ? (
        <p>
          <button type="button" onClick={start}>
            Edit as JSON
          </button>{" "}
          <span className="muted">Saving makes version {template.version + 1}; jobs made earlier keep theirs.</span>
        </p>
      ) : (
        <form onSubmit={save} noValidate>
          <ErrorAlert error={failure} />
          <Field label="Template (JSON)" error={error} hint={<>The body of <code>PUT /api/templates/{template.name}</code>.</>}>
            {(p) => <textarea {...p} className="mono" rows={18} spellCheck={false} value={text} onChange={(e) => setText(e.target.value)} />}
          </Field>
          <div className="actions">
            <button type="submit" className="primary" disabled={busy}>
              Save new version
            </button>{" "}
            <button type="button" onClick={() => setOpen(false)}>
              Cancel
            </button>
          </div>
        </form>
      )}
    </section>
  );
}
