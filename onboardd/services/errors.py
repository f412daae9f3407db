"""The one error type the service layer raises: what went wrong, never how HTTP says it.

``kind`` is one of a small, stable set (the web front maps each to a status in one table,
onboardd.web.errors.STATUS_OF_KIND; the CLI maps them to exit codes); ``code`` is the stable
machine-readable name callers see (None: the generic one of the kind); ``details`` is structured
data for the caller; ``retry_after_s`` is set when trying again later will help.
"""

from __future__ import annotations

from typing import Any, Final, Literal

Kind = Literal["invalid", "not_found", "conflict", "rate_limited", "unsupported", "too_large"]

KINDS: Final[tuple[Kind, ...]] = ("invalid", "not_found", "conflict", "rate_limited",
                                  "unsupported", "too_large")


class ServiceError(Exception):
    """A request a service cannot honour, with the data a caller needs to explain it."""

    def __init__(self, kind: Kind, message: str, *, code: str | None = None,
                 details: dict[str, Any] | None = None,
                 retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.kind: Kind = kind
        self.message = message
        self.code = code
        self.details: dict[str, Any] = details or {}
        self.retry_after_s = retry_after_s


def invalid_field(field: str, message: str) -> ServiceError:
    """An input problem naming one field ("field: message")."""
    return ServiceError("invalid", f"{field}: {message}", details={"field": field})
