"""Who is calling, and which tenant's jobs they may see (docs/security.md has the full mapping).

* `app_service`: App Service Authentication (Entra ID) validated the token and put
  the principal in `X-MS-CLIENT-PRINCIPAL` (base64 JSON; the platform strips any
  copy a client sends). App roles `Scheduler.Tenant.<name>` grant a tenant;
  `Scheduler.Admin` grants every tenant.
* `function_key`: the host checked a function key; the caller is a trusted
  backend (the Studio platform) that names the tenant in `X-Scheduler-Tenant`
  and, optionally, the end user in `X-Scheduler-User` (recorded in the audit).
* `development`: as `app_service` when the request carries the header, else a
  development principal in the `DEV_TENANT` tenant. Never use it in Azure: the
  header is trusted as sent.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.config import AuthMode, Settings
from shared.domain.errors import Forbidden, InvalidInput, Unauthenticated
from shared.domain.job import Actor

PRINCIPAL_HEADER = "x-ms-client-principal"
TENANT_HEADER = "x-scheduler-tenant"
USER_HEADER = "x-scheduler-user"

TENANT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ROLE_CLAIMS = ("roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role")
_ID_CLAIMS = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid", "sub")
_NAME_CLAIMS = ("name", "preferred_username", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name")


@dataclass(frozen=True, slots=True)
class Caller:
    actor: Actor
    tenants: frozenset[str]
    is_admin: bool = False

    def may_use(self, tenant: str) -> bool:
        return self.is_admin or tenant in self.tenants


def caller_from_headers(headers: Mapping[str, str], settings: Settings) -> Caller:
    """The caller of one request; raises Unauthenticated when there is none."""
    principal = headers.get(PRINCIPAL_HEADER)
    mode = settings.auth_mode
    if mode is AuthMode.FUNCTION_KEY:
        tenant = _tenant_name(headers.get(TENANT_HEADER))
        user = (headers.get(USER_HEADER) or "").strip()[:128]
        name = f"function-key ({user})" if user else "function-key"
        return Caller(
            Actor(id=f"function-key:{user}" if user else "function-key", name=name), frozenset({tenant})
        )
    if mode is AuthMode.APP_SERVICE and os.environ.get("WEBSITE_AUTH_ENABLED", "").lower() != "true":
        # Without App Service Authentication in front, anyone could send the header.
        raise Unauthenticated("AUTH_MODE is app_service but App Service Authentication is not enabled")
    if principal:
        return _from_client_principal(principal, settings)
    if mode is AuthMode.DEVELOPMENT:
        return Caller(Actor(id="dev-user", name="Developer"), frozenset({settings.dev_tenant}))
    raise Unauthenticated("sign in: no client principal on the request (App Service Authentication)")


def tenant_for(caller: Caller, headers: Mapping[str, str]) -> str:
    """The tenant a tenant-scoped request (create, list) acts in."""
    requested = headers.get(TENANT_HEADER)
    if requested:
        tenant = _tenant_name(requested)
        if not caller.may_use(tenant):
            raise Forbidden(f"you are not a member of tenant {tenant!r}")
        return tenant
    if len(caller.tenants) == 1:
        return next(iter(caller.tenants))
    raise InvalidInput(
        "name the tenant to act in with the X-Scheduler-Tenant header",
        errors={TENANT_HEADER: "required: you may act in several tenants" if caller.tenants else "required"},
    )


def _tenant_name(value: str | None) -> str:
    if not value or not TENANT_PATTERN.match(value):
        raise InvalidInput(
            "X-Scheduler-Tenant must name a tenant (letters, digits, '.', '_', '-'; at most 64)",
            errors={TENANT_HEADER: "missing or invalid"},
        )
    return value


def _from_client_principal(encoded: str, settings: Settings) -> Caller:
    try:
        principal: dict[str, Any] = json.loads(base64.b64decode(encoded, validate=False))
        claims = [(str(c["typ"]), str(c["val"])) for c in principal.get("claims", [])]
    except (ValueError, binascii.Error, KeyError, TypeError) as err:
        raise Unauthenticated("the X-MS-CLIENT-PRINCIPAL header is not valid base64 JSON") from err
    role_types = {str(principal.get("role_typ") or ""), *_ROLE_CLAIMS}
    roles = {val for typ, val in claims if typ in role_types}
    ident = _first(claims, _ID_CLAIMS)
    if ident is None:
        raise Unauthenticated("the client principal has no object id")
    name = _first(claims, (str(principal.get("name_typ") or ""), *_NAME_CLAIMS)) or ident
    prefix = settings.tenant_role_prefix
    tenants = frozenset(
        r[len(prefix) :] for r in roles if r.startswith(prefix) and TENANT_PATTERN.match(r[len(prefix) :])
    )
    return Caller(Actor(id=ident, name=name), tenants, is_admin=settings.admin_role in roles)


def _first(claims: list[tuple[str, str]], types: tuple[str, ...]) -> str | None:
    for wanted in types:
        for typ, val in claims:
            if typ == wanted and val:
                return val
    return None


def encode_principal(object_id: str, name: str, roles: list[str]) -> str:
    """An X-MS-CLIENT-PRINCIPAL value as App Service builds it (for tests and local use)."""
    claims = [
        {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": object_id},
        {"typ": "name", "val": name},
        *({"typ": "roles", "val": role} for role in roles),
    ]
    body = {"auth_typ": "aad", "name_typ": "name", "role_typ": "roles", "claims": claims}
    return base64.b64encode(json.dumps(body).encode()).decode()


def may_manage_pools(caller: Caller, settings: Settings) -> bool:
    """Pools are shared by every tenant: the admin role changes them, as do the development
    principal (the local stack) and the Studio backend (function keys: a secret only it holds)."""
    return caller.is_admin or settings.auth_mode in (AuthMode.DEVELOPMENT, AuthMode.FUNCTION_KEY)
