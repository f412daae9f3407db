"""JWT verification: algorithms, expiry, claims."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from onboardd.auth import REASONS, AuthError, Principal, TokenCodec, TokenRules, parse_ttl

SECRET = "x" * 40


def test_hs256_round_trip() -> None:
    codec = TokenCodec("HS256", SECRET, SECRET)
    before = int(time.time())
    who = codec.decode(codec.encode("u1", "admin", ["s1", "s2"], 60))
    assert who == Principal(sub="u1", role="admin", salons=("s1", "s2"),
                            expires_at=who.expires_at)
    assert before + 60 <= who.expires_at <= int(time.time()) + 60
    assert who.manages("s1") and not who.manages("s3")


def test_rs256_with_public_key_only() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = private.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    token = TokenCodec("RS256", public, pem).encode("c1", "customer", [], 60)
    assert TokenCodec("RS256", public, None).decode(token).role == "customer"
    # An HS256 token signed with the public key as secret (key confusion) is refused.
    forged = jwt.encode({"sub": "x", "role": "admin", "salons": ["s"], "exp": time.time() + 60},
                        "p" * 40, algorithm="HS256")
    with pytest.raises(AuthError):
        TokenCodec("RS256", public, None).decode(forged)


def test_alg_none_expired_wrong_secret_and_bad_claims_are_refused() -> None:
    codec = TokenCodec("HS256", SECRET, SECRET)
    now = int(time.time())
    none = jwt.encode({"sub": "u", "role": "admin", "exp": now + 60}, None, algorithm="none")
    cases = {
        none: "invalid token",
        jwt.encode({"sub": "u", "role": "admin", "exp": now - 5}, SECRET): "expired",
        jwt.encode({"sub": "u", "role": "admin", "exp": now + 60}, "y" * 40): "invalid token",
        jwt.encode({"sub": "u", "role": "root", "exp": now + 60}, SECRET): "role",
        jwt.encode({"sub": "u", "role": "admin", "salons": "s1", "exp": now + 60}, SECRET):
            "salons",
        jwt.encode({"sub": "u", "role": "admin"}, SECRET): "exp",
        jwt.encode({"sub": "u", "role": "admin", "exp": now + 60}, SECRET, algorithm="HS512"):
            "invalid token",
        "not.a.token": "invalid token",
    }
    for token, message in cases.items():
        with pytest.raises(AuthError, match=message):
            codec.decode(token)


def test_parse_ttl() -> None:
    assert [parse_ttl(t) for t in ("90s", "15m", "1h", "7d", "30")] == [90, 900, 3600, 604800, 30]
    for bad in ("", "1y", "-5m", "0"):
        with pytest.raises(ValueError, match="--ttl"):
            parse_ttl(bad)


def test_phone_claim_is_read_as_e164_or_refused() -> None:
    codec = TokenCodec("HS256", SECRET, SECRET)
    assert codec.decode(codec.encode("u", "customer", [], 60)).phone is None
    who = codec.decode(codec.encode("u", "customer", [], 60, phone="+91 98765-43210"))
    assert who.phone == "+919876543210"
    now = int(time.time())
    for bad in ("9876543210", "+911234", 919876543210, "+91 22 2345 6789"):
        token = jwt.encode({"sub": "u", "role": "customer", "exp": now + 60, "phone": bad},
                           SECRET)
        with pytest.raises(AuthError, match="phone must be the user's verified mobile number") \
                as err:
            codec.decode(token)
        assert err.value.reason == "bad_claim"


def test_rules_are_pyjwt_options() -> None:
    """iss and aud are minted and required; the leeway stretches exp; the maximum age needs
    iat (a refusal names the setting)."""
    rules = TokenRules(issuer="https://app.example", audience="onboardd", leeway_s=30,
                       max_age_s=600)
    codec = TokenCodec("HS256", SECRET, SECRET, rules)
    assert codec.decode(codec.encode("u", "admin", ["s"], 60)).salons == ("s",)
    now = int(time.time())
    claims = {"sub": "u", "role": "customer", "iss": "https://app.example", "aud": "onboardd"}
    assert codec.decode(jwt.encode(claims | {"iat": now - 620, "exp": now - 20}, SECRET)).sub
    cases = {
        "too_old": claims | {"iat": now - 700, "exp": now + 60},
        "expired": claims | {"iat": now - 100, "exp": now - 40},
        "missing_claim": claims | {"exp": now + 60},
        "wrong_issuer": claims | {"iss": "x", "iat": now, "exp": now + 60},
        "wrong_audience": claims | {"aud": "x", "iat": now, "exp": now + 60},
    }
    for reason, body in cases.items():
        with pytest.raises(AuthError) as err:
            codec.decode(jwt.encode(body, SECRET))
        assert err.value.reason == reason, (reason, str(err.value))
        assert err.value.reason in REASONS
