"""What every API route shares: who is calling, the services, and the errors an operation can give."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from shared.api.identity import TENANT_HEADER, Caller, caller_from_headers, tenant_for
from shared.bootstrap import Services
from shared.domain.errors import NotFound
from shared.domain.ids import is_id

# The errors each operation can give (shared/api/problems.py maps them; docs/api.md explains them).
# Every operation but health and preview reads storage (503) in a tenant named or implied by the
# caller's identity (401, 403, and 422 when the tenant header is missing or malformed).
ACTS_IN_TENANT = (401, 403, 422, 503)
BY_ID = (*ACTS_IN_TENANT, 404)
CHANGES_STATE = (*BY_ID, 409)
READS_BODY = (400, 413, 415)  # malformed JSON, too large, not JSON


@dataclass(frozen=True)
class Context:
    services: Services
    caller: Caller
    headers: dict[str, str]

    def tenant(self) -> str:
        return tenant_for(self.caller, self.headers)

    def visible_tenants(self) -> list[str]:
        """The tenants a read across tenants covers: the one the tenant header names, else every
        tenant the caller is a member of (an admin: every tenant with jobs)."""
        if self.headers.get(TENANT_HEADER) or (not self.caller.is_admin and len(self.caller.tenants) <= 1):
            return [self.tenant()]
        if self.caller.is_admin:
            return sorted(set(self.services.job_repository.tenants()) | set(self.caller.tenants))
        return sorted(self.caller.tenants)

    def job_tenant(self, job_id: str) -> str:
        """The tenant holding `job_id` that this caller may see; 404 otherwise (never 403: no probing)."""
        if not is_id(job_id):
            raise NotFound(f"job {job_id} not found")
        if self.headers.get(TENANT_HEADER) or (not self.caller.is_admin and len(self.caller.tenants) == 1):
            return self.tenant()
        if self.caller.is_admin:
            owner = self.services.job_repository.locate(job_id)
            if owner is not None:
                return owner
        for tenant in sorted(self.caller.tenants):
            try:
                self.services.job_service.get(tenant, job_id)
                return tenant
            except NotFound:
                continue
        raise NotFound(f"job {job_id} not found")


def context(request: Request) -> Context:
    services: Services = request.app.state.provider()
    headers = {k.lower(): v for k, v in request.headers.items()}
    return Context(services, caller_from_headers(headers, services.settings), headers)


Ctx = Annotated[Context, Depends(context)]
