"""The configuration's sections as frozen msgspec structs, with their defaults (what
onboardd.toml documents); onboardd.config reads them from the file and the environment."""

from __future__ import annotations

from typing import Literal

import msgspec

from onboardd.domain.sending_hours import SendingHours, parse_hours
from onboardd.simulator.settings import SimulatorSettings


class Paths(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    state_dir: str = "./var"


class Database(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    url: str = ""
    pool_min_size: int = 2
    pool_max_size: int = 10
    connect_timeout_s: float = 5.0
    command_timeout_s: float = 30.0
    start_retry_s: float = 30.0


class Http(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: int = 8080
    public_base_url: str = ""
    trust_forwarded: bool = False
    header_timeout_s: float = 10.0
    body_idle_timeout_s: float = 60.0
    body_timeout_s: float = 180.0


class Auth(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    jwt_secret: str = ""
    jwt_secret_file: str = ""
    jwt_public_key_file: str = ""
    jwt_private_key_file: str = ""
    token_ttl_s: int = 3600
    # Optional checks (README: The JWT contract): "" = not checked, 0 = no limit.
    issuer: str = ""
    audience: str = ""
    leeway_s: float = 0.0
    max_token_age_s: int = 0


class Pii(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    key: str = ""
    key_file: str = ""
    key_id: str = "k1"
    retired_keys: str = ""
    hash_key: str = ""


class Twilio(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    account_sid: str = ""
    auth_token: str = ""
    auth_token_file: str = ""
    whatsapp_number: str = ""
    sms_number: str = ""
    api_base_url: str = "https://api.twilio.com"
    whatsapp_rate_per_s: float = 80.0
    sms_rate_per_s: float = 100.0
    max_in_flight: int = 64
    request_timeout_s: float = 10.0
    max_attempts: int = 3
    rate_limit_pause_s: float = 60.0


class Import(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    max_file_bytes: int = 5 * 1024 * 1024
    max_rows: int = 10_000
    imports_per_hour: int = 5
    chunk_rows: int = 1000
    max_uncompressed_bytes: int = 100 * 1024 * 1024
    max_columns: int = 200
    uploads_per_hour: int = 30
    # What a blank or missing consent means: "assume" (may invite) or "require" (never invite
    # until the customer opts in).
    default_consent: Literal["assume", "require"] = "assume"


class Campaigns(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    claim_batch: int = 200
    resend_window_h: float = 24.0
    delivery_wait_s: float = 3600.0
    reconcile_interval_s: float = 300.0
    max_segments: int = 3
    lease_s: float = 120.0
    sweep_interval_s: float = 2.0
    due_poll_s: float = 5.0
    dispatch_poll_s: float = 1.0
    # Quiet hours: the sending window of a salon that has not set its own, in its timezone.
    sending_window_start: str = "09:00"
    sending_window_end: str = "21:00"

    def sending_hours(self) -> SendingHours:
        """The default sending window (checked at load)."""
        return parse_hours(self.sending_window_start, self.sending_window_end)


class Offers(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    invitation_expiry_days: int = 30
    match_poll_s: float = 5.0
    phone_region: str = "IN"
    claim_misses_per_user: int = 5
    claim_misses_per_ip: int = 20
    claim_window_s: float = 900.0
    claim_lockout_s: float = 900.0
    claim_lockout_max_s: float = 86400.0
    claim_memory_s: float = 604800.0
    # check-imported-customer answers only about the caller's own number (phone claim or
    # users.phone); false: about any number (the spec's fields only), warned at every start.
    check_requires_proof: bool = True


class RateLimit(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """API rate limits (README: Rate limits): token buckets per instance, in memory. Each
    budget is requests a second on average with bursts; a rate of 0 turns that budget off."""

    enabled: bool = True
    # Admin API (/api/salons/...) and admin UI (/admin/...): per token subject, per address.
    admin_per_s: float = 50.0
    admin_burst: int = 200
    admin_ip_per_s: float = 200.0
    admin_ip_burst: int = 1000
    # Mobile API (/api/mobile/...): per token subject, per address (carrier NAT shares them).
    mobile_per_s: float = 5.0
    mobile_burst: int = 30
    mobile_ip_per_s: float = 50.0
    mobile_ip_burst: int = 200
    # The mobile check of a phone, per subject, on top: at most this many in any minute.
    check_per_min: int = 20
    # Twilio's webhooks (/api/webhooks/...): per address only (Twilio posts from few).
    webhook_ip_per_s: float = 1000.0
    webhook_ip_burst: int = 5000
    # Buckets kept per budget (least recently used dropped first).
    max_keys: int = 100_000


class Pricing(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What one message costs, for the campaign builder's estimate (examples, not tariffs)."""

    sms_paisa_per_segment: int = 25
    whatsapp_paisa_per_message: int = 100


class Supervisor(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    restart_max: int = 5
    restart_window_s: float = 60.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    shutdown_grace_s: float = 10.0
    poll_interval_s: float = 5.0


class Metrics(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """GET /metrics: open (empty token) or only with ``Authorization: Bearer <token>``."""

    token: str = ""
    token_file: str = ""


class Log(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    paths: Paths = msgspec.field(default_factory=Paths)
    database: Database = msgspec.field(default_factory=Database)
    http: Http = msgspec.field(default_factory=Http)
    auth: Auth = msgspec.field(default_factory=Auth)
    pii: Pii = msgspec.field(default_factory=Pii)
    twilio: Twilio = msgspec.field(default_factory=Twilio)
    simulator: SimulatorSettings = msgspec.field(default_factory=SimulatorSettings)
    # "import" is a Python keyword: the attribute is import_, the TOML section stays [import].
    import_: Import = msgspec.field(default_factory=Import, name="import")
    campaigns: Campaigns = msgspec.field(default_factory=Campaigns)
    offers: Offers = msgspec.field(default_factory=Offers)
    ratelimit: RateLimit = msgspec.field(default_factory=RateLimit)
    pricing: Pricing = msgspec.field(default_factory=Pricing)
    supervisor: Supervisor = msgspec.field(default_factory=Supervisor)
    metrics: Metrics = msgspec.field(default_factory=Metrics)
    log: Log = msgspec.field(default_factory=Log)

    @property
    def embedded_db(self) -> bool:
        """True when no database URL is configured and onboardd runs its own Postgres."""
        return not self.database.url

    @property
    def simulated_twilio(self) -> bool:
        """True when no Twilio credentials are configured: the built-in simulator is used."""
        return not (self.twilio.account_sid and self.twilio.auth_token)


# The spec's own Twilio variables (spec §4.1), honoured next to ONBOARDD_TWILIO_*.
