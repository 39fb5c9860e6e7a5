"""Templates, in the jobs table beside the tenant's jobs (partition = tenant).

    ~t~{name}                               the template at its newest version (list, get, update)
    ~v~{name}~{999999 - version:06d}        each version as it was made (newest first)

A create inserts both rows, an update replaces the head (on its ETag) and inserts the new version's
row, in one entity-group transaction: the head and its history never disagree.
"""

from __future__ import annotations

import json

from shared.adapters.table import Row, Table, Value, Write
from shared.domain.errors import AlreadyExists, NotFound
from shared.domain.template import Template

_HEAD = "~t~"
_VERSIONS = "~v~"
_MAX_VERSION = 999_999


def _version_rk(name: str, version: int) -> str:
    return f"{_VERSIONS}{name}~{_MAX_VERSION - version:06d}"


def _props(t: Template) -> dict[str, Value]:
    return {
        "spec": t.spec.model_dump_json(exclude_defaults=True),
        "version": t.version,
        "created_at": t.created_at.isoformat(),
        "created_by": t.created_by.model_dump_json(),
        "updated_at": t.updated_at.isoformat(),
        "updated_by": t.updated_by.model_dump_json(),
    }


def _template(row: Row) -> Template:
    d = row.data
    return Template.model_validate(
        {
            "tenant": row.pk,
            "spec": json.loads(str(d["spec"])),
            "version": d["version"],
            "created_at": d["created_at"],
            "created_by": json.loads(str(d["created_by"])),
            "updated_at": d["updated_at"],
            "updated_by": json.loads(str(d["updated_by"])),
        }
    )


class TemplatesTable:
    def __init__(self, table: Table) -> None:
        self.table = table

    def get(self, tenant: str, name: str) -> tuple[Template, str]:
        """The template at its newest version, and the ETag to update it with."""
        try:
            row = self.table.get(tenant, _HEAD + name)
        except NotFound:
            raise NotFound(f"no template named {name!r}") from None
        return _template(row), row.etag

    def version(self, tenant: str, name: str, version: int) -> Template:
        if not 1 <= version <= _MAX_VERSION:
            raise NotFound(f"template {name!r} has no version {version}")
        try:
            return _template(self.table.get(tenant, _version_rk(name, version)))
        except NotFound:
            raise NotFound(f"template {name!r} has no version {version}") from None

    def list(self, tenant: str) -> list[Template]:
        """Every template of the tenant at its newest version, by name (one range query)."""
        return [_template(r) for r in self.table.query(tenant, rk_ge=_HEAD, rk_lt=_HEAD + "~")]

    def add(self, template: Template) -> None:
        """Insert version 1: AlreadyExists if the name is taken."""
        name, props = template.spec.name, _props(template)
        writes = [Write("insert", _HEAD + name, props), Write("insert", _version_rk(name, 1), props)]
        self.table.write(template.tenant, writes)

    def save(self, etag: str, after: Template) -> None:
        """Make `after` the newest version, if the head is unchanged since read (else
        ConcurrencyConflict), keeping the version it was as history."""
        name, props = after.spec.name, _props(after)
        writes = [
            Write("replace", _HEAD + name, props, etag),
            Write("insert", _version_rk(name, after.version), props),
        ]
        try:
            self.table.write(after.tenant, writes)
        except AlreadyExists:
            raise AlreadyExists(f"template {name!r} is at version {after.version} already") from None
