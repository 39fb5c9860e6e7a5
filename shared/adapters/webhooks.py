"""Posting a notification to its destination over HTTPS (requests, imported when first used).

Errors are described without the URL: webhook URLs of Teams and Slack carry their token.
"""

from __future__ import annotations

import os
from typing import Protocol


class Poster(Protocol):
    def post(
        self, url: str, data: bytes, headers: dict[str, str], timeout: float
    ) -> tuple[int | None, str | None]:
        """POST `data`: the HTTP status (None: no answer) and, unless it was a 2xx, why it failed."""
        ...


class HttpPoster:
    """POST with a connect and a read timeout, no redirects (a destination that moved is an error)."""

    def post(
        self, url: str, data: bytes, headers: dict[str, str], timeout: float
    ) -> tuple[int | None, str | None]:
        import requests

        try:
            answer = requests.post(
                url, data=data, headers=headers, timeout=(min(5.0, timeout), timeout), allow_redirects=False
            )
        except requests.Timeout:
            return None, f"no answer within {timeout:g} s"
        except requests.exceptions.SSLError:
            return None, "TLS handshake failed"
        except requests.ConnectionError:
            return None, "could not connect"
        except requests.RequestException as err:
            return None, f"request failed ({type(err).__name__})"
        if 200 <= answer.status_code < 300:
            return answer.status_code, None
        return answer.status_code, f"HTTP {answer.status_code} {answer.reason or ''}".strip()


def secret_from_settings(ref: str) -> str | None:
    """A signing secret: app setting `NOTIFICATION_SECRET_<REF>` (a Key Vault reference in Azure).

    App Service hands the app a reference it could not resolve (the secret is not set yet, or the
    identity may not read it) as its literal text: that is no secret, and nothing is signed with it."""
    value = os.environ.get("NOTIFICATION_SECRET_" + ref.upper().replace("-", "_")) or None
    if value is not None and value.strip().startswith("@Microsoft.KeyVault("):
        return None
    return value
