"""Structured logging: one event per line as key=value pairs, with the request id attached."""

from __future__ import annotations

import contextvars
import logging
import sys
import threading
import time
from typing import Any

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def _fmt_value(value: Any) -> str:
    text = str(value)
    if not text or any(c in text for c in ' ="\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


_ts_cache: tuple[int, str] = (-1, "")


def _ts_field(created: float) -> str:
    """`ts="YYYY-MM-DD HH:MM:SS"`, formatted once per second."""
    global _ts_cache
    second, text = _ts_cache
    if int(created) != second:
        second = int(created)
        ts = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        text = f"ts={_fmt_value(ts)}"
        _ts_cache = (second, text)
    return text


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        parts = [
            _ts_field(record.created),
            f"level={record.levelname.lower()}",
            f"logger={record.name}",
            f"request_id={getattr(record, 'request_id', None) or request_id_var.get()}",
            f"event={_fmt_value(record.getMessage())}",
        ]
        fields = getattr(record, "fields", None)
        if fields:
            parts.extend(f"{k}={_fmt_value(v)}" for k, v in fields.items())
        if record.exc_info:
            parts.append(f"exc={_fmt_value(self.formatException(record.exc_info))}")
        return " ".join(parts)


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access", "alembic.runtime.migration", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)


def log_event(logger: logging.Logger, event: str, **fields: Any) -> None:
    if logger.isEnabledFor(logging.INFO):
        logger.info(event, extra={"fields": fields})


_seen_failures: dict[tuple[str, str, int], int] = {}
_seen_lock = threading.Lock()


def log_failure(logger: logging.Logger, event: str, **fields: Any) -> None:
    """Log the exception being handled: its traceback once per place it is raised from, a
    one-line error with a count after that, so that repeated requests cannot fill the log."""
    exc = sys.exc_info()[1]
    tb = exc.__traceback__ if exc is not None else None
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = (
        type(exc).__name__,
        tb.tb_frame.f_code.co_filename if tb else "",
        tb.tb_lineno if tb else 0,
    )
    with _seen_lock:
        count = _seen_failures[where] = _seen_failures.get(where, 0) + 1
    if count == 1:
        logger.error(event, exc_info=True, extra={"fields": fields})
    else:
        text = str(exc)
        logger.error(
            event,
            extra={
                "fields": {
                    **fields,
                    "error": f"{where[0]}: {text[:200]}",
                    "at": f"{where[1]}:{where[2]}",
                    "seen": count,
                }
            },
        )
