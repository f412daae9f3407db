"""PII encryption: round trip, rotation, tampering, keyed hashes."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from onboardd.config import ConfigError, load
from onboardd.pii import PiiCipher, PiiError, cipher_from_config


def _key() -> bytes:
    return os.urandom(32)


def test_round_trip_and_fresh_nonce() -> None:
    cipher = PiiCipher("k1", _key(), _key())
    a = cipher.encrypt("+919876543210", "phone")
    b = cipher.encrypt("+919876543210", "phone")
    assert a != b and a.startswith("k1$")
    assert "9876543210" not in a
    assert cipher.decrypt(a, "phone") == "+919876543210"
    assert cipher.decrypt(cipher.encrypt("priya@example.com", "email"), "email") == (
        "priya@example.com")


def test_rotation_reads_old_ciphertext_with_retired_key() -> None:
    old_key, new_key, hash_key = _key(), _key(), _key()
    old = PiiCipher("k1", old_key, hash_key)
    token = old.encrypt("+919876543210", "phone")
    rotated = PiiCipher("k2", new_key, hash_key, retired={"k1": old_key})
    assert rotated.decrypt(token, "phone") == "+919876543210"
    assert rotated.needs_rotation(token)
    fresh = rotated.encrypt("+919876543210", "phone")
    assert fresh.startswith("k2$") and not rotated.needs_rotation(fresh)
    # Without the retired key the old value is unreadable, with a clear error.
    with pytest.raises(PiiError, match="unknown PII key id 'k1'"):
        PiiCipher("k2", new_key, hash_key).decrypt(token, "phone")


def test_tampering_and_wrong_purpose_are_detected() -> None:
    cipher = PiiCipher("k1", _key(), _key())
    token = cipher.encrypt("+919876543210", "phone")
    kid, _, body = token.partition("$")
    raw = bytearray(base64.urlsafe_b64decode(body))
    raw[-1] ^= 1
    with pytest.raises(PiiError, match="failed authentication"):
        cipher.decrypt(kid + "$" + base64.urlsafe_b64encode(bytes(raw)).decode(), "phone")
    with pytest.raises(PiiError):
        cipher.decrypt(token, "email")
    with pytest.raises(PiiError):
        cipher.decrypt("garbage", "phone")


def test_keyed_hash() -> None:
    hash_key = _key()
    one = PiiCipher("k1", _key(), hash_key)
    two = PiiCipher("k9", _key(), hash_key)
    assert one.phone_hash("+919876543210") == one.phone_hash("+919876543210")
    assert one.phone_hash("+919876543210") == two.phone_hash("+919876543210")
    assert one.phone_hash("+919876543210") != one.phone_hash("+919876543211")
    other = PiiCipher("k1", _key(), _key())
    assert other.phone_hash("+919876543210") != one.phone_hash("+919876543210")
    assert len(one.phone_hash("+919876543210")) == 32


def test_embedded_mode_generates_key_once(tmp_path: Path) -> None:
    cfg = load(None, {"ONBOARDD_PATHS_STATE_DIR": str(tmp_path)})
    first = cipher_from_config(cfg)
    token = first.encrypt("+919876543210", "phone")
    second = cipher_from_config(cfg)
    assert second.decrypt(token, "phone") == "+919876543210"
    assert (tmp_path / "pii.key").stat().st_mode & 0o777 == 0o600


def test_external_database_requires_a_key(tmp_path: Path) -> None:
    cfg = load(None, {"ONBOARDD_PATHS_STATE_DIR": str(tmp_path),
                      "ONBOARDD_DATABASE_URL": "postgresql://db/x"})
    with pytest.raises(ConfigError, match=r"\[pii\] key: required"):
        cipher_from_config(cfg)
    key = base64.b64encode(_key()).decode()
    cfg = load(None, {"ONBOARDD_DATABASE_URL": "postgresql://db/x", "ONBOARDD_PII_KEY": key,
                      "ONBOARDD_PII_KEY_ID": "prod1"})
    assert cipher_from_config(cfg).encrypt("x", "phone").startswith("prod1$")
    assert not (tmp_path / "pii.key").exists()
