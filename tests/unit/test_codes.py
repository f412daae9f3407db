"""Tests for offer codes and download tokens."""

from __future__ import annotations

import re

import pytest

from onboardd.codes import ALPHABET, download_token, generate_offer_code, normalize_code


def test_alphabet_is_the_spec_one() -> None:
    assert ALPHABET == "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    assert len(ALPHABET) == 32
    assert not set("IO01") & set(ALPHABET)


def test_generated_codes_have_the_shape_and_are_unique() -> None:
    codes = [generate_offer_code() for _ in range(10_000)]
    shape = re.compile(f"WELCOME-[{ALPHABET}]{{6}}")
    assert all(shape.fullmatch(c) for c in codes)
    # 32**6 ≈ 1.07e9 codes: a collision in 10k draws has probability ~5%,
    # so allow at most a couple rather than demanding none.
    assert len(set(codes)) >= 9_998
    assert set("".join(c[-6:] for c in codes)) == set(ALPHABET)


def test_generated_code_with_prefix() -> None:
    code = generate_offer_code("GLAM2")
    assert code.startswith("GLAM2-")
    assert len(code) == len("GLAM2-") + 6
    assert normalize_code(code) == code


@pytest.mark.parametrize("prefix", ["", "welcome", "2FOR1", "WEL-COME", "A" * 21, "WEL COME"])
def test_generate_rejects_bad_prefix(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        generate_offer_code(prefix)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("WELCOME-A7K9M2", "WELCOME-A7K9M2"),
        ("welcome-a7k9m2", "WELCOME-A7K9M2"),
        ("  Welcome-A7k9M2 \n", "WELCOME-A7K9M2"),
        ("WELCOMEA7K9M2", "WELCOME-A7K9M2"),
        ("welcomea7k9m2", "WELCOME-A7K9M2"),
        ("GLAM2-ABCDEF", "GLAM2-ABCDEF"),
        ("GLAM2ABCDEF", "GLAM2-ABCDEF"),
    ],
)
def test_normalize_code_accepts(raw: str, expected: str) -> None:
    assert normalize_code(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "WELCOME",
        "WELCOME-",
        "WELCOME-A7K9M",  # too short
        "WELCOME-A7K9M22",  # too long
        "WELCOME-A7K9MO",  # O is not in the alphabet: no mapping to 0
        "WELCOME-A7K9M0",  # 0 is not in the alphabet
        "WELCOME-A7K9MI",  # I is not in the alphabet: no mapping to 1
        "WELCOME-A7K9M1",
        "WELCOME A7K9M2",  # only the dash may be missing, not replaced
        "WELCOME--A7K9M2",
        "WELCOME_A7K9M2",
        "-A7K9M2",
        "A7K9M2",
        "2WELCOME-A7K9M2",
        "WELCOME-A7K9M2!",
        "WELCOME-Ａ7K9M2",  # full-width letter
    ],
)
def test_normalize_code_rejects(raw: str) -> None:
    assert normalize_code(raw) is None


def test_download_token_is_url_safe_and_unique() -> None:
    tokens = {download_token() for _ in range(1_000)}
    assert len(tokens) == 1_000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{16}", t) for t in tokens)
