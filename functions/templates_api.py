"""Templates: a task and policies with typed parameters, from which jobs are made (docs/api.md,
"Templates"). A tenant's templates are its own, like its jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, Query, Response
from fastapi import Path as PathParam

from functions.api_context import ACTS_IN_TENANT, BY_ID, CHANGES_STATE, READS_BODY, Ctx
from shared.api import openapi
from shared.api.bodies import strict_json
from shared.api.schemas import TemplateListOut, TemplateOut
from shared.domain.errors import InvalidInput
from shared.domain.template import TemplateSpec

router = APIRouter()
TemplateName = Annotated[
    str,
    PathParam(
        min_length=1,
        max_length=64,
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$",
        description="The template's name.",
    ),
]
StrictSpec = Annotated[None, Depends(strict_json(TemplateSpec))]
_ETAG = openapi.header('The template\'s version, e.g. `"v3"`: send it back in `If-Match`.', r'^"v[0-9]+"$')
TEMPLATE_EXAMPLES = {
    "training": {
        "summary": "Train one model: its name, learning rate and size are parameters",
        "value": {
            "name": "train-model",
            "description": "Train a churn model for one market",
            "job_type": "model_training",
            "task": {
                "kind": "databricks_job",
                "job_id": 123,
                "parameters": {
                    "market": "{{params.market}}",
                    "learning_rate": "{{params.learning_rate}}",
                    "epochs": "{{params.epochs}}",
                    "full_refresh": "{{params.full_refresh}}",
                },
            },
            "parameters": [
                {"name": "market", "type": "enum", "options": ["de", "fr", "uk"], "required": True},
                {"name": "learning_rate", "type": "float", "default": 0.001},
                {"name": "epochs", "type": "int", "default": 10},
                {"name": "full_refresh", "type": "bool", "default": False},
            ],
            "retry": {"max_attempts": 3, "initial_delay": "PT5M"},
            "timeout": "PT4H",
            "tags": ["churn"],
        },
    }
}


def _version(value: str | None) -> int | None:
    if value is None or value.strip() == "*":
        return None
    text = value.strip().removeprefix("W/").strip('"').removeprefix("v")
    if not text.isdigit():
        raise InvalidInput(
            'If-Match must be a template version as returned in ETag, e.g. "v3"',
            errors={"If-Match": "invalid"},
        )
    return int(text)


@router.post(
    "/api/templates",
    status_code=201,
    tags=["templates"],
    responses={
        201: {
            "headers": {"Location": openapi.header("The template: `/api/templates/{name}`."), "ETag": _ETAG}
        },
        **openapi.errors(*READS_BODY, *ACTS_IN_TENANT, 409, notes={409: "A template has this name."}),
    },
)
def create_template(
    body: Annotated[TemplateSpec, Body(openapi_examples=TEMPLATE_EXAMPLES)],
    ctx: Ctx,
    _strict: StrictSpec,
    response: Response,
) -> TemplateOut:
    """Create a template (version 1). Its task names its parameters as `{{params.<name>}}`."""
    template = ctx.services.template_service.create(ctx.tenant(), ctx.caller.actor, body)
    response.headers["Location"] = f"/api/templates/{body.name}"
    response.headers["ETag"] = f'"v{template.version}"'
    return TemplateOut.of(template)


@router.get("/api/templates", tags=["templates"], responses=openapi.errors(*ACTS_IN_TENANT))
def list_templates(ctx: Ctx) -> TemplateListOut:
    """The tenant's templates at their newest versions, by name."""
    return TemplateListOut(
        items=[TemplateOut.of(t) for t in ctx.services.template_service.list(ctx.tenant())]
    )


@router.get(
    "/api/templates/{name}",
    tags=["templates"],
    responses={200: {"headers": {"ETag": _ETAG}}, **openapi.errors(*BY_ID)},
)
def get_template(
    name: TemplateName,
    ctx: Ctx,
    response: Response,
    version: Annotated[
        int | None, Query(ge=1, le=999_999, description="A past version (default: newest).")
    ] = None,
) -> TemplateOut:
    """The template at its newest version, or at `version`."""
    template = ctx.services.template_service.get(ctx.tenant(), name, version)
    response.headers["ETag"] = f'"v{template.version}"'
    return TemplateOut.of(template)


@router.put(
    "/api/templates/{name}",
    tags=["templates"],
    responses={
        200: {"headers": {"ETag": _ETAG}},
        **openapi.errors(*READS_BODY, *CHANGES_STATE, 412, notes={409: "It kept changing: try again."}),
    },
)
def update_template(
    name: TemplateName,
    body: Annotated[TemplateSpec, Body(openapi_examples=TEMPLATE_EXAMPLES)],
    ctx: Ctx,
    _strict: StrictSpec,
    response: Response,
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description='The version you read (`"v3"`): updated only if still at it, else 412.',
        ),
    ] = None,
) -> TemplateOut:
    """A new version of the template. Jobs made from earlier versions keep what they were made with."""
    template = ctx.services.template_service.update(
        ctx.tenant(), name, ctx.caller.actor, body, _version(if_match)
    )
    response.headers["ETag"] = f'"v{template.version}"'
    return TemplateOut.of(template)
