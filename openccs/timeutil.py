"""Times as the API shows them: `YYYY-MM-DD HH:MM:SS` in the configured time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

_zone: ZoneInfo = ZoneInfo("Asia/Shanghai")


def set_timezone(name: str) -> None:
    global _zone
    _zone = ZoneInfo(name)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def fmt_time(value: datetime | None) -> str:
    """Format a naive-UTC database time for the API."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(_zone).strftime("%Y-%m-%d %H:%M:%S")


def fmt_time_zoned(value: datetime | None) -> str:
    """`fmt_time` with its UTC offset (`2026-11-29 21:00:00 +08:00`), for people reading
    the command line's tables rather than the API."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    local = value.astimezone(_zone)
    offset = local.strftime("%z")
    return f"{local.strftime('%Y-%m-%d %H:%M:%S')} {offset[:3]}:{offset[3:]}"


def zone() -> ZoneInfo:
    return _zone
