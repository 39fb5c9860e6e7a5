"""Sortable unique ids (ULID layout: 48-bit milliseconds + 80 random bits, Crockford base32)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(at: datetime) -> str:
    """A 26-character id that sorts by creation time, then randomly within the millisecond."""
    value = (int(at.timestamp() * 1000) << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def id_time(text: str) -> datetime:
    """When an id was made (its first 48 bits: milliseconds since the epoch)."""
    value = 0
    for char in text[:10]:
        value = value * 32 + _ALPHABET.index(char)
    return datetime.fromtimestamp(value / 1000, UTC)


def is_id(text: str) -> bool:
    return len(text) == 26 and all(c in _ALPHABET for c in text)
