"""Templates: create, read, list, update (each update a new version), and jobs made from them.

A job made from a template is an ordinary job (edit it, pause it, run it like any other) that
remembers the template, version and values it was made from. Updating a template changes no job:
jobs made earlier keep what they were made with.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from shared.domain.clock import Clock
from shared.domain.errors import AlreadyExists, Conflict, InvalidInput, NotFound, PreconditionFailed
from shared.domain.job import Actor, JobDefinition, Scalar, TemplateRef
from shared.domain.template import (
    JobFromTemplate,
    ParameterErrors,
    Template,
    TemplateSpec,
    job_definition,
)
from shared.services.conflicts import until_saved
from shared.services.ports import TemplateRepository

log = logging.getLogger(__name__)


class TemplateService:
    def __init__(self, repository: TemplateRepository, clock: Clock) -> None:
        self.repository = repository
        self.clock = clock

    def create(self, tenant: str, actor: Actor, spec: TemplateSpec) -> Template:
        now = self.clock.now()
        template = Template(
            tenant=tenant, spec=spec, created_at=now, created_by=actor, updated_at=now, updated_by=actor
        )
        try:
            self.repository.add(template)
        except AlreadyExists:
            raise Conflict(
                f"a template named {spec.name!r} exists: update it with PUT /api/templates/{spec.name}",
                errors={"name": "taken"},
            ) from None
        log.info("template created", extra={"tenant": tenant, "template": spec.name})
        return template

    def get(self, tenant: str, name: str, version: int | None = None) -> Template:
        if version is not None:
            return self.repository.version(tenant, name, version)
        return self.repository.get(tenant, name)[0]

    def list(self, tenant: str) -> list[Template]:
        return self.repository.list(tenant)

    def update(
        self, tenant: str, name: str, actor: Actor, spec: TemplateSpec, expected_version: int | None = None
    ) -> Template:
        """A new version of the template (`expected_version`: only if it is still at that one)."""
        if spec.name != name:
            raise InvalidInput(
                f"the body names template {spec.name!r}, the path {name!r}: a template cannot be renamed",
                errors={"name": f"must be {name!r}"},
            )

        def attempt() -> Template:
            before, etag = self.repository.get(tenant, name)
            if expected_version is not None and before.version != expected_version:
                raise PreconditionFailed(
                    f"template {name} is at version {before.version}, not {expected_version}: "
                    "read it again and re-apply your change"
                )
            now = self.clock.now()
            after = before.model_copy(
                update={"spec": spec, "version": before.version + 1, "updated_at": now, "updated_by": actor}
            )
            self.repository.save(etag, after)
            return after

        template = until_saved(attempt, f"template {name}")
        log.info("template updated", extra={"tenant": tenant, "template": name, "version": template.version})
        return template

    def job_definition(self, tenant: str, body: JobFromTemplate) -> tuple[JobDefinition, TemplateRef]:
        """The job `body` asks for, and the template reference it records: 422 for a template that
        does not exist or values that do not fit (one error per parameter, `parameters.<name>`)."""
        try:
            template = self.get(tenant, body.template, body.version)
        except NotFound as err:
            raise InvalidInput(
                str(err), errors={"version" if body.version else "template": "not found"}
            ) from None
        values = self.values(template, body.parameters)
        try:
            definition = job_definition(template, body, values)
        except ValidationError as err:
            first = err.errors(include_url=False)[0]
            field = ".".join(str(p) for p in first["loc"]) or "template"
            raise InvalidInput(
                f"template {template.spec.name!r} with these values makes an invalid job: "
                f"{field}: {first['msg']}",
                errors={field: str(first["msg"])},
            ) from None
        return definition, template.ref(values)

    @staticmethod
    def values(template: Template, given: dict[str, Scalar], prefix: str = "parameters") -> dict[str, Scalar]:
        try:
            return template.spec.resolve(given, prefix)
        except ParameterErrors as err:
            summary = "; ".join(f"{k}: {v}" for k, v in list(err.errors.items())[:5])
            raise InvalidInput(
                f"the parameters do not fit template {template.spec.name!r}: {summary}", errors=err.errors
            ) from None
