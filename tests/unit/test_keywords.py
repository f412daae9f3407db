"""Tests for inbound keyword classification."""

from __future__ import annotations

import pytest

from onboardd.domain.keywords import classify_inbound

STOP = ["STOP", "STOPALL", "UNSUBSCRIBE", "END", "QUIT", "CANCEL", "REVOKE", "OPTOUT"]
START = ["START", "UNSTOP", "YES"]
HELP = ["HELP", "INFO"]


def variants(word: str) -> list[str]:
    """Return the spellings of one keyword that must be recognised."""
    return [
        word,
        word.lower(),
        word.capitalize(),
        f"  {word}  ",
        f"\n{word.lower()}\r\n",
        f"{word.capitalize()}.",
        f"{word}!",
        f"{word}!!!",
        f"{word} .",
    ]


@pytest.mark.parametrize("body", [v for w in STOP for v in variants(w)])
def test_stop(body: str) -> None:
    assert classify_inbound(body) == "stop"


@pytest.mark.parametrize("body", [v for w in START for v in variants(w)])
def test_start(body: str) -> None:
    assert classify_inbound(body) == "start"


@pytest.mark.parametrize("body", [v for w in HELP for v in variants(w)])
def test_help(body: str) -> None:
    assert classify_inbound(body) == "help"


@pytest.mark.parametrize(
    "body",
    [
        "",
        "   ",
        "please stop texting me",  # a sentence, not a keyword: a human reads it
        "stop it",
        "STOP ALL",
        "S T O P",
        "stopp",
        "st0p",
        ".stop",
        "yes please",
        "Yes I will come",
        "help me",
        "thanks",
        "no",
        "STOP 🙏",
        "👍",
    ],
)
def test_other(body: str) -> None:
    assert classify_inbound(body) == "other"
