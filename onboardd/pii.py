"""Encryption of phones and emails at rest, and the keyed hash used to match phones.

Ciphertext is text ``<key id>$<base64url(nonce || AES-GCM ciphertext)>``; the key id lets keys
rotate: the current key encrypts, retired keys still decrypt. The matching hash is
HMAC-SHA256 of the E.164 number under a separate hash key, which does not rotate with the
encryption key (rotating it would orphan every stored hash).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from onboardd.config import Config, ConfigError, decode_key
from onboardd.logging import get_logger

log = get_logger("pii")

_NONCE_BYTES = 12


class PiiError(Exception):
    """Ciphertext that cannot be decrypted: unknown key id, tampering or a malformed value."""


class _KeyFile(msgspec.Struct):
    key_id: str
    key: str
    hash_key: str


class PiiCipher:
    """Encrypts, decrypts and hashes PII with a key ring."""

    def __init__(self, key_id: str, key: bytes, hash_key: bytes,
                 retired: dict[str, bytes] | None = None) -> None:
        if len(key) != 32 or len(hash_key) < 32:
            raise ValueError("PII keys must be 32 bytes")
        if "$" in key_id:
            raise ValueError("key id must not contain '$'")
        self._key_id = key_id
        self._keys = {**(retired or {}), key_id: key}
        self._aead = {kid: AESGCM(k) for kid, k in self._keys.items()}
        self._hash_key = hash_key

    @property
    def key_id(self) -> str:
        """The id of the key new ciphertext is written with."""
        return self._key_id

    def encrypt(self, plaintext: str, purpose: str) -> str:
        """Encrypt text; purpose ('phone', 'email') is bound as associated data."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead[self._key_id].encrypt(nonce, plaintext.encode(), purpose.encode())
        return f"{self._key_id}${base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, purpose: str) -> str:
        """Decrypt a value written by encrypt with any key of the ring."""
        key_id, sep, body = token.partition("$")
        if not sep or key_id not in self._aead:
            raise PiiError(f"unknown PII key id '{key_id}'")
        try:
            raw = base64.urlsafe_b64decode(body)
            plain = self._aead[key_id].decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:],
                                               purpose.encode())
        except (InvalidTag, ValueError):
            raise PiiError("PII ciphertext failed authentication (tampered or wrong key)") from None
        return plain.decode()

    def phone_hash(self, e164: str) -> bytes:
        """Keyed hash of an E.164 number: equal numbers give equal hashes under one key."""
        return hmac.new(self._hash_key, e164.encode(), hashlib.sha256).digest()

    def needs_rotation(self, token: str) -> bool:
        """True when the ciphertext was written with a retired key."""
        return token.partition("$")[0] != self._key_id

    def knows(self, key_id: str) -> bool:
        """True when ciphertext of this key id can be decrypted (current or retired key)."""
        return key_id in self._aead

    def reencrypt(self, token: str, purpose: str) -> str:
        """The same plaintext under the current key (the token itself when it already is)."""
        if not self.needs_rotation(token):
            return token
        return self.encrypt(self.decrypt(token, purpose), purpose)


def _parse_retired(text: str) -> dict[str, bytes]:
    """'old1:BASE64,old2:BASE64' -> {id: key}."""
    retired: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        kid, sep, value = item.partition(":")
        if not sep or not kid:
            raise ConfigError(
                "[pii] retired_keys: expected 'id:base64key' items separated by commas")
        retired[kid] = decode_key("pii", f"retired_keys ({kid})", value)
    return retired


def _derived_hash_key(key: bytes) -> bytes:
    return hmac.new(key, b"onboardd phone matching hash v1", hashlib.sha256).digest()


def _embedded_keyfile(state_dir: Path) -> _KeyFile:
    """Read, or create once, the development key file under the state directory."""
    path = state_dir / "pii.key"
    if path.exists():
        return msgspec.json.decode(path.read_bytes(), type=_KeyFile)
    state_dir.mkdir(parents=True, exist_ok=True)
    keyfile = _KeyFile(
        key_id="local1",
        key=base64.b64encode(secrets.token_bytes(32)).decode(),
        hash_key=base64.b64encode(secrets.token_bytes(32)).decode(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(msgspec.json.encode(keyfile))
    log.warning("pii_key_generated", path=str(path),
                hint="embedded mode only; set ONBOARDD_PII_KEY in production and back this up")
    return keyfile


def cipher_from_config(cfg: Config) -> PiiCipher:
    """Build the cipher from [pii]; in embedded mode a key is generated once if none is set."""
    retired = _parse_retired(cfg.pii.retired_keys)
    if cfg.pii.key:
        key = decode_key("pii", "key", cfg.pii.key)
        hash_key = decode_key("pii", "hash_key", cfg.pii.hash_key) if cfg.pii.hash_key else (
            _derived_hash_key(key))
        return PiiCipher(cfg.pii.key_id, key, hash_key, retired)
    if not cfg.embedded_db:
        raise ConfigError(
            "[pii] key: required with an external database; set ONBOARDD_PII_KEY "
            "(base64 of 32 random bytes, e.g. `openssl rand -base64 32`) or [pii] key_file"
        )
    keyfile = _embedded_keyfile(Path(cfg.paths.state_dir))
    return PiiCipher(keyfile.key_id, decode_key("pii", "key", keyfile.key),
                     decode_key("pii", "hash_key", keyfile.hash_key), retired)
