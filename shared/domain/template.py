"""Templates: a task and its policies with typed parameters, from which jobs (and batches) are made.

A template's task names its parameters as `{{params.<name>}}` in any of its strings (a notebook
path, a widget value, a Spark setting). Making a job from it checks each value against its
parameter's type (`check_values`: one error per parameter, keyed `parameters.<name>`), fills the
placeholders (`render`), and the job records which template and version it came from and with what
values (`TemplateRef`). A template is versioned: every update is a new version; jobs made earlier
keep the version they were made from.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shared.domain.job import (
    Actor,
    JobDefinition,
    JobSettings,
    JobTrigger,
    Name,
    Scalar,
    TemplateRef,
)
from shared.domain.run import text_of
from shared.domain.schedule import ScheduleSpec

_Frozen = ConfigDict(frozen=True, extra="forbid")

TemplateName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
]
ParameterName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]


def open_object(schema: dict[str, Any]) -> None:
    """`additionalProperties` with `propertyNames` rather than pydantic's `patternProperties`, which
    generated clients read as an object that allows no property."""
    patterns = schema.pop("patternProperties", None)
    if patterns:
        pattern, value = patterns.popitem()
        schema.update(additionalProperties=value, propertyNames={"pattern": pattern})


Values = Annotated[dict[ParameterName, Scalar], Field(max_length=64, json_schema_extra=open_object)]
MAX_PARAMETERS = 50
MAX_OPTIONS = 100
PARAMS = re.compile(r"\{\{\s*params\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class ParameterType(StrEnum):
    STRING = "string"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    ENUM = "enum"


_TYPE_WORDS = {
    ParameterType.STRING: "a string",
    ParameterType.INT: "an integer",
    ParameterType.FLOAT: "a number",
    ParameterType.BOOL: "true or false",
}


class TemplateParameter(BaseModel):
    """One typed parameter. `enum` takes one of `options`; a parameter with a `default` is never
    required (the default is used when a value is left out)."""

    model_config = _Frozen
    name: ParameterName
    type: ParameterType
    description: str = Field("", max_length=500)
    required: bool = False
    default: Scalar | None = None
    options: Annotated[list[Scalar], Field(min_length=1, max_length=MAX_OPTIONS)] | None = Field(
        None, description="`enum` only: the values it may take."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.type is ParameterType.ENUM:
            if not self.options:
                raise ValueError(f"parameter {self.name!r}: an enum needs 'options'")
            if len({json.dumps(o) for o in self.options}) != len(self.options):
                raise ValueError(f"parameter {self.name!r}: 'options' has a value twice")
        elif self.options is not None:
            raise ValueError(f"parameter {self.name!r}: only an enum has 'options'")
        if self.default is not None:
            if self.required:
                raise ValueError(f"parameter {self.name!r}: a required parameter has no default")
            problem = self.problem(self.default)
            if problem:
                raise ValueError(f"parameter {self.name!r}: the default {problem}")
        return self

    def problem(self, value: object) -> str | None:
        """Why `value` (a JSON value) is not one this parameter takes, or None."""
        if self.type is ParameterType.ENUM:
            assert self.options is not None
            if any(type(value) is type(o) and value == o for o in self.options):
                return None
            return "must be one of " + ", ".join(json.dumps(o) for o in self.options)
        if self.type is ParameterType.BOOL:
            ok = isinstance(value, bool)
        elif self.type is ParameterType.INT:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif self.type is ParameterType.FLOAT:
            ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        else:
            ok = isinstance(value, str)
        return None if ok else f"must be {_TYPE_WORDS[self.type]}"


def placeholders(value: object) -> set[str]:
    """The `{{params.<name>}}` names used anywhere in a JSON value."""
    return set(PARAMS.findall(json.dumps(value)))


def render(value: Any, values: Mapping[str, str]) -> Any:
    """`value` (JSON) with every `{{params.<name>}}` in its strings replaced by `values[name]`."""
    if isinstance(value, str):
        return PARAMS.sub(lambda m: values.get(m.group(1), m.group(0)), value)
    if isinstance(value, list):
        return [render(v, values) for v in value]
    if isinstance(value, dict):
        return {k: render(v, values) for k, v in value.items()}
    return value


class TemplateSpec(JobSettings):
    """The body of `POST /api/templates` and `PUT /api/templates/{name}`: a job's task and policies
    (any of a job's fields but name, schedule and triggers) with typed parameters. Each job made from
    it has its own name, schedule and triggers, and the task with `{{params.<name>}}` filled in."""

    name: TemplateName
    description: str = Field("", max_length=2000)
    parameters: Annotated[list[TemplateParameter], Field(max_length=MAX_PARAMETERS)] = Field(
        default_factory=list
    )

    @model_validator(mode="after")
    def _parameters_named_once_and_used_as_declared(self) -> Self:
        names = [p.name for p in self.parameters]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"parameter {twice[0]!r} is declared twice")
        unknown = sorted(placeholders(self.settings()) - set(names))
        if unknown:
            raise ValueError(f"{{{{params.{unknown[0]}}}}} is used but not a declared parameter")
        return self

    def parameter(self, name: str) -> TemplateParameter | None:
        return next((p for p in self.parameters if p.name == name), None)

    def resolve(self, given: Mapping[str, object], prefix: str = "parameters") -> dict[str, Scalar]:
        """The values a job is made with: `given`, checked, plus defaults. Raises `ParameterErrors`
        naming every wrong parameter (`{prefix}.<name>`)."""
        errors: dict[str, str] = {}
        for name in given:
            if self.parameter(name) is None:
                errors[f"{prefix}.{name}"] = f"is not a parameter of template {self.name!r}"
        values: dict[str, Scalar] = {}
        for p in self.parameters:
            if p.name in given:
                problem = p.problem(given[p.name])
                if problem:
                    errors[f"{prefix}.{p.name}"] = problem
                else:
                    values[p.name] = given[p.name]  # type: ignore[assignment]
            elif p.default is not None:
                values[p.name] = p.default
            elif p.required:
                errors[f"{prefix}.{p.name}"] = "is required"
        if errors:
            raise ParameterErrors(errors)
        return values


class ParameterErrors(ValueError):
    """Values that do not fit their parameters: the message of each, by field (`parameters.lr`)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class Template(BaseModel):
    """A stored template: its spec at its newest version, and who made and changed it."""

    model_config = ConfigDict(frozen=True)
    tenant: str
    spec: TemplateSpec
    version: int = 1
    created_at: datetime
    created_by: Actor
    updated_at: datetime
    updated_by: Actor

    def ref(self, values: Mapping[str, Scalar]) -> TemplateRef:
        return TemplateRef(name=self.spec.name, version=self.version, parameters=dict(values))


class JobFromTemplate(BaseModel):
    """The body of `POST /api/jobs/schedule` that makes a job from a template: the template's task and
    policies, `{{params.<name>}}` filled with `parameters`, and this job's own name and schedule."""

    model_config = _Frozen
    template: TemplateName = Field(description="The template's name (GET /api/templates).")
    version: int | None = Field(None, ge=1, description="Which version (default: the newest).")
    parameters: Values = Field(
        default_factory=dict, description="A value for each parameter, of its type; defaults fill the rest."
    )
    name: Name
    description: str | None = Field(None, max_length=2000, description="Default: the template's.")
    schedule: ScheduleSpec | None = None
    triggers: Annotated[list[JobTrigger], Field(max_length=5)] = Field(default_factory=list)


def job_definition(template: Template, body: JobFromTemplate, values: Mapping[str, Scalar]) -> JobDefinition:
    """The job `body` makes from `template` with `values` (resolved): ValidationError if filling in
    the values made a field invalid (a value too long for it)."""
    spec = template.spec
    texts = {name: text_of(value) for name, value in values.items()}
    return JobDefinition.model_validate(
        {
            **render(spec.settings(), texts),
            "name": body.name,
            "description": spec.description if body.description is None else body.description,
            "schedule": body.schedule.model_dump(mode="json") if body.schedule else None,
            "triggers": [t.model_dump(mode="json") for t in body.triggers],
        }
    )
