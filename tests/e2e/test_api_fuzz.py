"""The published contract, fuzzed: schemathesis drives a live `onboardd serve` on the test
PostgreSQL through every operation of /api/openapi.json, with valid admin and customer tokens,
signed Twilio webhooks and seeded data (a salon, an offer, an import, a campaign).

Checks on every response: never a 5xx, status, content type, headers and body as the document
says, and no answer slower than 1 s. Example counts are bounded so CI stays in its budget.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Final

import asyncpg
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode
from twilio.request_validator import RequestValidator

from onboardd.auth import TokenCodec
from tests.conftest import JWT_SECRET, daemon_env, fresh_database
from tests.e2e.daemon import Daemon, free_port

TWILIO_TOKEN: Final = "fuzz-auth-token-" + "z" * 16
CUSTOMER_PHONE: Final = "+919876543210"
MAX_EXAMPLES: Final = 25
STATEFUL_EXAMPLES: Final = 40
CSV: Final = ("Name,Phone,Email\nPriya Sharma,9876543210,priya@example.com\n"
              "Rahul Verma,9812345678,\nAnita Rao,9822222222,anita@example.com\n")


class Target:
    """The live daemon and what the fuzzer needs to call it."""

    def __init__(self, daemon: Daemon, salon: str, admin: str, customer: str) -> None:
        self.daemon = daemon
        self.salon = salon
        self.admin = admin
        self.customer = customer
        self.validator = RequestValidator(TWILIO_TOKEN)

    def headers(self, case: Any) -> dict[str, str]:
        """The credentials the operation's security scheme asks for."""
        path: str = case.path
        if path.startswith("/api/salons/"):
            return {"Authorization": f"Bearer {self.admin}"}
        if path.startswith("/api/mobile/"):
            return {"Authorization": f"Bearer {self.customer}"}
        if path.startswith("/api/webhooks/"):
            params = case.body if isinstance(case.body, dict) else {}
            url = self.daemon.base_url + case.formatted_path
            signed = {str(k): _form_value(v) for k, v in params.items()}
            return {"X-Twilio-Signature": self.validator.compute_signature(url, signed)}
        return {}


def _form_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


@pytest.fixture(scope="module")
async def fuzz_db(pg_uri: str, template_db: str) -> AsyncIterator[tuple[str, str]]:
    """A database of its own with one salon: (url, salon id)."""
    async with fresh_database(pg_uri, template_db) as url:
        conn = await asyncpg.connect(url)
        try:
            salon = await conn.fetchval(
                "INSERT INTO salons (name, app_download_link) VALUES ($1, $2) RETURNING id",
                "Fuzz Studio", "https://app.example.com/s/fuzz")
        finally:
            await conn.close()
        yield url, str(salon)


def _seed(base: str, salon: str, admin: str) -> None:
    """An offer, a finished import and a draft campaign, through the API."""
    auth = {"Authorization": f"Bearer {admin}"}
    api = f"{base}/api/salons/{salon}"
    offer = requests.post(f"{api}/welcome-offers", headers=auth, timeout=10, json={
        "name": "Welcome 20", "discountType": "percentage", "discountValue": 20,
        "validityDays": 30})
    assert offer.status_code == 201, offer.text
    upload = requests.post(f"{api}/customers/import", headers=auth, timeout=30,
                           files={"file": ("customers.csv", CSV, "text/csv")})
    assert upload.status_code == 201, upload.text
    batch = upload.json()["batchId"]
    confirmed = requests.post(f"{api}/customers/import/{batch}/confirm", headers=auth,
                              timeout=10)
    assert confirmed.status_code in (200, 202), confirmed.text
    deadline = time.monotonic() + 30
    while requests.get(f"{api}/customers/import/{batch}/status", headers=auth,
                       timeout=10).json()["status"] != "completed":
        assert time.monotonic() < deadline, "the seed import did not finish"
        time.sleep(0.2)
    campaign = requests.post(f"{api}/invitation-campaigns", headers=auth, timeout=10, json={
        "name": "Fuzz campaign", "channel": "sms", "welcomeOfferId": offer.json()["id"],
        "messageTemplate": "Hi {{customer_name}}, {{offer_amount}} off: {{download_link}}"})
    assert campaign.status_code == 201, campaign.text


@pytest.fixture(scope="module")
def target(fuzz_db: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Target]:
    """`onboardd serve` with rate limits off (the fuzzer is one fast client), seeded."""
    url, salon = fuzz_db
    work = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    daemon = Daemon(daemon_env(url, work / "state", ONBOARDD_RATELIMIT_ENABLED="false",
                               ONBOARDD_SIMULATOR_AUTH_TOKEN=TWILIO_TOKEN,
                               ONBOARDD_HTTP_PUBLIC_BASE_URL=base), work, port=port)
    try:
        daemon.wait_ready()
        codec = TokenCodec("HS256", JWT_SECRET, JWT_SECRET)
        admin = codec.encode("fuzz-admin", "admin", [salon], 3600)
        customer = codec.encode("fuzz-customer", "user", [], 3600, phone=CUSTOMER_PHONE)
        _seed(base, salon, admin)
        yield Target(daemon, salon, admin, customer)
    finally:
        code = daemon.stop()
        assert code == 0, daemon.log()


@pytest.fixture(scope="module")
def api_schema(target: Target) -> Any:
    """The daemon's own published document, with the seeded salon as every salonId."""
    config = SchemathesisConfig.from_dict({
        # Schema-valid input may still break a business rule (a 422 that names it), so
        # "valid input is accepted" is not checked; everything else is, 1 s at most.
        "checks": {"max_response_time": 1.0, "positive_data_acceptance": {"enabled": False}},
        "generation": {"max-examples": MAX_EXAMPLES},
    })
    return schemathesis.openapi.from_url(target.daemon.base_url + "/api/openapi.json",
                                         config=config)


def _fuzz(api_schema: Any, target: Target, mode: GenerationMode) -> tuple[int, list[str]]:
    """Run every operation's cases of one mode; (operations run, what failed, in words)."""
    failures: list[str] = []
    skipped: list[str] = []
    count = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        count += 1

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck), database=None)
        def run(case: Any) -> None:
            if "salonId" in (case.path_parameters or {}):
                case.path_parameters["salonId"] = target.salon  # the seeded salon's data
            case.call_and_validate(headers=target.headers(case))

        try:
            run()
        except Unsatisfiable:
            # Nothing to make invalid (no parameter, no body): only the positive run applies.
            assert mode is GenerationMode.NEGATIVE, operation.label
            skipped.append(operation.label)
        except Exception as exc:  # each operation's failure is reported, then the next runs
            failures.append(f"{operation.label}: {exc}")
    return count - len(skipped), failures


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_holds_to_the_contract(api_schema: Any, target: Target,
                                               mode: GenerationMode) -> None:
    count, failures = _fuzz(api_schema, target, mode)
    assert count >= (40 if mode is GenerationMode.POSITIVE else 35)  # all were driven
    assert failures == [], "\n\n".join(failures)


def test_linked_sequences_hold_to_the_contract(api_schema: Any, target: Target) -> None:
    """Stateful: create a campaign, an offer or an import, then follow the document's links
    (read, change, send, pause, confirm, ...) with the ids the answers carried."""
    base = api_schema.as_state_machine()
    calls: list[str] = []

    class Sequences(base):  # type: ignore[misc, valid-type]
        def before_call(self, case: Any) -> None:
            if "salonId" in (case.path_parameters or {}):
                case.path_parameters["salonId"] = target.salon
            calls.append(f"{case.method} {case.path}")

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": target.headers(case)}

    Sequences.run(settings=settings(max_examples=STATEFUL_EXAMPLES, deadline=None,
                                    derandomize=True, stateful_step_count=6, database=None,
                                    suppress_health_check=list(HealthCheck)))
    # Linked steps ran: operations on what an earlier step created, with its id.
    linked = {call for call in calls if "{id}" in call or "{offerId}" in call
              or "{batchId}" in call}
    assert len(linked) >= 3, sorted(set(calls))


def test_the_daemon_logged_no_failure(target: Target) -> None:
    """After the fuzzing, nothing in the daemon's log is a request failure or a traceback."""
    log = Path(target.daemon.log_path).read_text()
    assert "request_failed" not in log
    assert "Traceback" not in log
