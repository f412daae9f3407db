"""structlog, configured once: JSON lines for journald, a readable console on a TTY."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
from structlog.typing import FilteringBoundLogger

from onboardd.domain.masking import mask_digits as mask_digits  # re-exported

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}

_UNSCRUBBED = frozenset({"timestamp", "request_id", "level", "logger"})


def _scrub(value: Any) -> Any:
    """Mask phone-like runs in strings, recursing into lists, tuples and dicts."""
    if isinstance(value, str):
        return mask_digits(value)
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    if isinstance(value, dict):
        return {key: _scrub(item) for key, item in value.items()}
    return value


def _scrub_pii(_logger: Any, _method: str, event: MutableMapping[str, Any]
               ) -> MutableMapping[str, Any]:
    """Processor: mask phone-like values in every field (tracebacks included) but ids."""
    for key, value in event.items():
        if key not in _UNSCRUBBED and not key.endswith("_id"):
            event[key] = _scrub(value)
    return event


def configure(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Configure structlog and route stdlib logging (aiohttp, asyncpg) through it, to stdout
    (the daemon's journal) or another stream (stderr for commands whose stdout is output)."""
    out = sys.stdout if stream is None else stream
    use_console = fmt == "console" or (fmt == "auto" and out.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        # Tracebacks become text first, so the scrubber also masks numbers inside them.
        structlog.processors.format_exc_info,
        _scrub_pii,
    ]
    renderer: Any = (
        structlog.dev.ConsoleRenderer() if use_console else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processor=renderer,
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(_LEVELS[level], logging.INFO))
    # aiohttp's own access log is replaced by ours (structured, with request ids).
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("pgserver").setLevel(logging.WARNING)


def get_logger(name: str) -> FilteringBoundLogger:
    """A logger bound with the component name: the filtering bound logger ``configure`` sets up
    (``make_filtering_bound_logger``), so only its methods exist (no stdlib-only ones)."""
    logger: FilteringBoundLogger = structlog.get_logger(component=name)
    return logger
