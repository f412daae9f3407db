"""The one exception of file reading: an upload that cannot be imported."""

from __future__ import annotations


class FileRejected(Exception):
    """An upload that cannot be imported; message names the problem and the fix."""

    def __init__(self, code: str, message: str, details: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details: dict[str, object] = details or {}
