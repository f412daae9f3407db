"""Logs never carry phone numbers."""

from __future__ import annotations

import io
import json
import sys

import structlog

from onboardd.logging import configure, get_logger, mask_digits


def test_mask_digits_keeps_only_last_four() -> None:
    assert mask_digits("call +91 98765 43210 now") == "call ********3210 now"
    assert mask_digits("+919876543210") == "********3210"
    assert mask_digits("row 12 of 10000") == "row 12 of 10000"
    assert mask_digits("batch 2026-11-25") == "batch 2026-11-25"


def test_json_log_lines_mask_phones_but_not_ids(monkeypatch: object) -> None:
    out = io.StringIO()
    real = sys.stdout
    sys.stdout = out
    try:
        configure("info", "json")
        with structlog.contextvars.bound_contextvars(salon_id="123456789012"):
            get_logger("test").info("invited", to="+919876543210", note="sent to 9876543210")
    finally:
        sys.stdout = real
        configure("warning", "json")
    line = json.loads(out.getvalue().strip().splitlines()[-1])
    assert line["to"] == "********3210"
    assert line["note"] == "sent to ******3210"
    assert line["salon_id"] == "123456789012"
    assert line["event"] == "invited" and line["component"] == "test"
    assert "9876543210" not in out.getvalue()


def test_tracebacks_and_nested_values_are_masked() -> None:
    out = io.StringIO()
    real = sys.stdout
    sys.stdout = out
    try:
        configure("info", "json")
        try:
            raise ValueError("bad number +919876543210")
        except ValueError as exc:
            get_logger("test").error("failed", exc_info=exc, numbers=["+919876543210"],
                                     extra={"to": "9876543210"})
    finally:
        sys.stdout = real
        configure("warning", "json")
    text = out.getvalue()
    line = json.loads(text.strip().splitlines()[-1])
    assert "ValueError" in line["exception"]
    assert "9876543210" not in text
    assert line["numbers"] == ["********3210"]
    assert line["extra"] == {"to": "******3210"}
