"""The audit trail: which fields of a job a change moved, from what to what."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from shared.domain.job import Actor, AuditEntry, FieldChange, Job

_MAX_VALUE_CHARS = 2000  # keeps one audit row well under Table Storage's 64 KiB property limit


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        for key, inner in value.items():
            _flatten(inner, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = value
    return out


def _audited(job: Job | None) -> dict[str, Any]:
    if job is None:
        return {}
    state = {"definition": job.definition.model_dump(mode="json"), "status": job.status.value}
    return _flatten(state, "", {})


def masked(field: str, value: Any) -> Any:
    """A notification destination as the audit trail keeps it: its URL cut to scheme and host (a
    Teams or Slack webhook URL is a credential; one replaced since must not live on in the trail)."""
    if not field.startswith("definition.notifications.") or not isinstance(value, list):
        return value
    return [
        {**d, "url": _host_only(d["url"])} if isinstance(d, Mapping) and isinstance(d.get("url"), str) else d
        for d in value
    ]


def _host_only(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}/…" if parts.netloc else "…"


def _clip(value: Any) -> Any:
    if isinstance(value, str) and len(value) > _MAX_VALUE_CHARS:
        return value[:_MAX_VALUE_CHARS] + "…(truncated)"
    return value


def changes(before: Job | None, after: Job) -> list[FieldChange]:
    old, new = _audited(before), _audited(after)
    return [
        FieldChange(
            field=key, before=_clip(masked(key, old.get(key))), after=_clip(masked(key, new.get(key)))
        )
        for key in sorted(old.keys() | new.keys())
        if old.get(key) != new.get(key)
    ]


def audit_entry(action: str, before: Job | None, after: Job, actor: Actor, at: datetime) -> AuditEntry:
    return AuditEntry(
        job_id=after.id,
        revision=after.revision,
        at=at,
        actor=actor,
        action=action,
        version=after.version,
        changes=changes(before, after),
    )
