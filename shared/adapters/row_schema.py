"""Strict at the door, lenient in the cellar: how stored rows are read back, whatever release wrote them.

Requests are validated strictly (`extra="forbid"`). Rows are not requests: a row written by an
older release may lack a field added since, and one written by a newer release (during a
rollout, or after a rollback) may carry a field this code does not know. Neither may break the
job. So every row carries `schema_version`, and reading one:

1. applies the upgrade functions below, oldest first, to bring its data to this release's
   version (pure functions of a dict: a renamed field is moved, a new required field filled);
2. drops the fields the model does not know, at any depth (logged once per field, so an operator
   sees a rollout in progress without a log line per read), and lets pydantic default the rest.

Version history (bump it, and add the upgrade, when a stored field changes meaning or name):

    job 0 -> 1   rows before `schema_version`: nothing to change (`shard` defaults to its hash)
    run 0 -> 1   rows before `schema_version` (run keys under `{tenant}~{job}`): nothing to change;
                 `intent`, `watch_at`, `repairs`, `checks` and `shard` take their defaults
"""

from __future__ import annotations

import logging
import threading
import types
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

log = logging.getLogger(__name__)

JOB_VERSION = 1
RUN_VERSION = 1

Data = dict[str, Any]
Upgrade = Callable[[Data], Data]


def _unchanged(data: Data) -> Data:
    return data


UPGRADES: dict[tuple[str, int], Upgrade] = {
    ("job", 0): _unchanged,
    ("run", 0): _unchanged,
}
CURRENT = {"job": JOB_VERSION, "run": RUN_VERSION}


def upgraded(kind: str, data: Mapping[str, Any]) -> Data:
    """`data` brought to this release's version of `kind` (rows from a newer release: as they are)."""
    out = dict(data)
    version = int(out.pop("schema_version", 0) or 0)
    while version < CURRENT[kind]:
        out = UPGRADES[(kind, version)](out)
        version += 1
    return out


_reported: set[str] = set()
_lock = threading.Lock()


def known(model: type[BaseModel], data: Any, path: str = "") -> Any:
    """`data` with only the fields `model` knows, at every depth; each dropped field logged once."""
    if not isinstance(data, Mapping):
        return data
    out: Data = {}
    fields = model.model_fields
    for key, value in data.items():
        field = fields.get(key)
        if field is None:
            _report(f"{model.__name__}{path}.{key}")
            continue
        out[key] = _known_value(field.annotation, value, f"{path}.{key}")
    return out


def _known_value(annotation: Any, value: Any, path: str) -> Any:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _known_value(get_args(annotation)[0], value, path)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return known(annotation, value, path)
    if origin in (Union, types.UnionType):
        member = _member_for(get_args(annotation), value)
        return _known_value(member, value, path) if member is not None else value
    if origin is list and isinstance(value, list):
        (item,) = get_args(annotation) or (Any,)
        return [_known_value(item, v, f"{path}[]") for v in value]
    return value


def _member_for(members: tuple[Any, ...], value: Any) -> Any:
    """The model of a union that `value` is: the one its `kind` names, or the only model."""
    models = [m for m in (_unwrap(m) for m in members) if isinstance(m, type) and issubclass(m, BaseModel)]
    if not isinstance(value, Mapping) or not models:
        return None
    for model in models:
        kind = model.model_fields.get("kind")
        literal = kind is not None and get_origin(kind.annotation) is Literal
        if literal and kind is not None and value.get("kind") in get_args(kind.annotation):
            return model
    return models[0] if len(models) == 1 else None


def _unwrap(annotation: Any) -> Any:
    return get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation


def _report(field: str) -> None:
    with _lock:
        if field in _reported:
            return
        _reported.add(field)
    log.warning("a stored row has a field this release does not know; ignored: %s", field)
