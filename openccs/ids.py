"""Resource ids shaped like the product's: a prefix and 8 lower-case alphanumerics."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_lowercase + string.digits


def new_id(prefix: str, length: int = 8) -> str:
    return prefix + "-" + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def random_token(length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


INT32_MAX = 2**31 - 1


def parse_number(text: str, limit: int = INT32_MAX) -> int | None:
    """`text` as a number of at most `limit` when it is ASCII digits alone, else None.
    (str.isdigit also takes '²' and Arabic-Indic digits, which int() then refuses.)"""
    if not (text.isascii() and text.isdigit()) or len(text.lstrip("0")) > len(str(limit)):
        return None
    value = int(text)
    return value if value <= limit else None
