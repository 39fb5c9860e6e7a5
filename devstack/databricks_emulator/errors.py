"""Errors answered in the Databricks REST shape: ``{"error_code": ..., "message": ...}``."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """Raised by an endpoint (or a fault) to answer with an HTTP error status."""

    def __init__(
        self, status: int, error_code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error_code": self.error_code, "message": self.message}


def invalid_parameter(message: str) -> ApiError:
    # Databricks answers most bad input, including unknown job and run ids, with 400 INVALID_PARAMETER_VALUE;
    # the SDK turns "Job|Run ... does not exist" on jobs/get and jobs/runs/get into ResourceDoesNotExist.
    return ApiError(400, "INVALID_PARAMETER_VALUE", message)
