"""Application settings from environment variables (every one optional in development)."""

from __future__ import annotations

import math
import os
import secrets
import zlib
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("CS_DATA_DIR", PROJECT_ROOT / "data"))
SECRET_KEY_FILE = PROJECT_ROOT / ".secret_key"

# Values that must never be used as a production secret.
_WEAK_SECRETS = {"", "changeme", "change-me", "secret", "dev", "development", "test", "password"}
MIN_SECRET_LENGTH = 32
# A secret must carry at least this much estimated randomness (bits), so "a" * 32 or a
# repeated word is refused even though it is long enough. token_urlsafe(48) carries ~380.
MIN_SECRET_BITS = 100
_ZLIB_OVERHEAD_BYTES = 8  # header and checksum of a zlib stream
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "0.0.0.0", "[::1]", "::1")


class InsecureConfiguration(RuntimeError):
    """Raised when production settings would be unsafe to run with."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    app_env: Literal["development", "production"] = "development"
    app_base_url: str = "http://localhost:3000"
    # Other browser origins allowed to open the app's websocket and call its routes with
    # cookies (comma-separated, e.g. a second public hostname). The /v1 API needs none.
    allowed_origins: str = ""
    api_base_url: str = ""  # backend URL for plain HTTP routes; defaults to app_base_url in prod
    database_url: str = ""
    redis_url: str = ""
    secret_key: str = ""
    # Earlier SECRET_KEYs, comma-separated: still accepted to decrypt and verify what they
    # protected (2FA secrets, OAuth tokens, signed links); data is re-encrypted on use.
    secret_key_previous: str = ""

    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_from: str = "Creative Studio <no-reply@creative-studio.local>"
    smtp_starttls: bool = True

    stripe_secret_key: str = ""
    stripe_webhook_secret: str = ""
    stripe_api_base: str = ""

    google_client_id: str = ""
    google_client_secret: str = ""
    google_discovery_url: str = "https://accounts.google.com/.well-known/openid-configuration"
    # Verified domains: DNS servers asked for TXT records, comma-separated "host" or
    # "host:port" (unset: the system resolver).
    dns_nameservers: str = ""

    openai_base_url: str = ""
    openai_api_key: str = ""
    # Provider calls run on a bounded thread pool per provider endpoint (never the event
    # loop's default executor) and end at a total deadline, queueing included; keep both
    # deadlines under the 15-minute stuck-run sweep.
    provider_concurrency: int = Field(default=4, ge=1, le=64)
    provider_call_deadline_seconds: float = Field(default=120.0, gt=0, le=840)
    provider_video_deadline_seconds: float = Field(default=600.0, gt=0, le=840)
    # Marketing Assistant: the local provider streams its reply in pieces this far apart, so
    # an offline install shows a reply growing as a real model's would (0 = all at once).
    local_chat_chunk_seconds: float = Field(default=0.12, ge=0, le=5)
    # Runs queued or running at once (checked when a run starts).
    concurrent_runs_per_user: int = Field(default=3, ge=1)
    concurrent_runs_per_org: int = Field(default=10, ge=1)

    storage_endpoint_url: str = ""
    storage_bucket: str = ""
    storage_access_key_id: str = ""
    storage_secret_access_key: str = ""
    storage_region: str = "us-east-1"
    storage_local_dir: str = ""

    scheduler: Literal["inline", "off"] = "inline"
    # Where runs execute (services/run_engine.py): "inline" = worker threads inside this
    # process (no extra service); "redis" = Dramatiq on REDIS_URL, workers started with
    # `python -m jobs worker`. The web process only enqueues.
    run_queue: Literal["inline", "redis"] = "inline"
    run_inline_threads: int = Field(default=4, ge=1, le=64)
    run_worker_threads: int = Field(default=8, ge=1, le=256)
    # A running run's worker renews its lease every third of this; a lease past it means the
    # worker died, and the run is failed and its hold released (`runs_recover`).
    run_lease_seconds: int = Field(default=60, ge=5, le=600)
    # A queued run without a start after this long is handed to the queue again.
    run_queued_requeue_seconds: int = Field(default=60, ge=5, le=3600)
    # Public API: requests per minute per API key (a key may set its own); 0 = no limit.
    api_rate_limit_per_minute: int = Field(default=60, ge=0)
    # Operator credit adjustments larger than this many credits (either sign) need a second
    # operator's approval (four-eyes); at or below it they apply at once.
    operator_approval_threshold_credits: int = Field(default=100, ge=0, le=10_000_000)
    # Competitor Intel fetches (services/intel/fetcher.py): host names allowed even though they
    # resolve to private or loopback addresses (comma-separated; tests and intranet demos
    # only), the total time and the bytes read per page.
    intel_allowed_hosts: str = ""
    intel_fetch_timeout_seconds: float = Field(default=15.0, gt=0, le=120)
    intel_fetch_max_bytes: int = Field(default=2_000_000, ge=10_000, le=50_000_000)
    # Single sign-on (services/sso.py): issuer host names allowed even though they resolve to
    # private or loopback addresses (comma-separated; tests and intranet identity providers).
    sso_allowed_hosts: str = ""
    # Verified domains are re-checked in DNS by a job; this many failed checks in a row (the
    # TXT record gone) mark a domain unverified again.
    domain_recheck_failures: int = Field(default=3, ge=1, le=30)
    # Local payment mode hands out plans and credits without payment: a production server
    # refuses to start without Stripe unless this is set (private demos only).
    allow_local_payments: bool = False
    seed_demo_data: bool = True
    session_idle_minutes: int = Field(default=60 * 24 * 7, ge=5)
    session_absolute_days: int = Field(default=30, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _production_build_is_production(cls, values: Any) -> Any:
        """`reflex run --env prod` (REFLEX_ENV_MODE=prod) runs in production unless APP_ENV
        says otherwise explicitly: a production build never fails open as development."""
        if (
            isinstance(values, dict)
            and not values.get("app_env")
            and os.environ.get("REFLEX_ENV_MODE", "") == "prod"
        ):
            return {**values, "app_env": "production"}
        return values

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        if not self.database_url:
            DATA_DIR.mkdir(parents=True, exist_ok=True)
            self.database_url = f"sqlite:///{DATA_DIR / 'creative_studio.db'}"
        if self.run_queue == "redis" and not self.redis_url:
            raise ValueError("RUN_QUEUE=redis needs REDIS_URL (the queue lives in Redis).")
        if not self.storage_local_dir:
            self.storage_local_dir = str(DATA_DIR / "assets")
        if self.app_env == "production":
            self.seed_demo_data = False
            problems = self.production_problems()
            if problems:
                raise InsecureConfiguration(
                    "This configuration is not safe to run in production:\n- "
                    + "\n- ".join(problems)
                )
        elif not self.secret_key:
            self.secret_key = _local_secret_key()
        return self

    def production_problems(self) -> list[str]:
        """Everything that would make a production deployment unsafe or broken, each saying
        what to set. Empty when the configuration can serve real customers."""
        problems = []
        secret = self.secret_key.strip()
        if secret.lower() in _WEAK_SECRETS or len(secret) < MIN_SECRET_LENGTH:
            problems.append(
                "SECRET_KEY is missing or weak. Set SECRET_KEY to a random value of at least "
                f"{MIN_SECRET_LENGTH} characters, e.g. the output of "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
            )
        elif secret_entropy_bits(secret) < MIN_SECRET_BITS:
            problems.append(
                "SECRET_KEY is long enough but not random (it repeats a few characters). Set it "
                "to the output of `python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
            )
        if not self.stripe_secret_key and not self.allow_local_payments:
            problems.append(
                "STRIPE_SECRET_KEY is not set. Without it the app runs in local payment mode, "
                "where owners get plans and credits without paying. Set the Stripe keys, or "
                "ALLOW_LOCAL_PAYMENTS=true for a private demo."
            )
        if self.stripe_secret_key and not self.stripe_webhook_secret:
            problems.append(
                "STRIPE_WEBHOOK_SECRET is not set, so every Stripe webhook would be refused and "
                "paid checkouts would never add credits. Set it to the signing secret (whsec_...) "
                "of the webhook endpoint <API_BASE_URL>/webhooks/stripe."
            )
        if not self.smtp_host:
            problems.append(
                "SMTP_HOST is not set, so verification links, password resets and invitations "
                "would never be delivered. Set SMTP_HOST (and SMTP_PORT, SMTP_USERNAME, "
                "SMTP_PASSWORD, SMTP_FROM)."
            )
        for name, url in (("APP_BASE_URL", self.app_base_url), ("API_BASE_URL", self.api_base_url)):
            if url and _is_local_url(url):
                problems.append(
                    f"{name} is {url}, a local address: links in mail, OAuth redirects and the "
                    f"browser's connection would point at the visitor's own machine. Set {name} "
                    "to the public https:// address of this deployment."
                )
        return problems

    def browser_origins(self, *, dev_ports: tuple[int, ...] = ()) -> list[str]:
        """Origins whose pages may use the websocket and the cookie-bearing HTTP routes.

        The public base URLs and ALLOWED_ORIGINS; in development also this machine's own
        localhost ports (never any other site).
        """
        origins = [_origin(self.app_base_url), _origin(self.backend_base_url)]
        origins += [_origin(o) for o in self.allowed_origins.split(",") if o.strip()]
        if not self.is_production:
            for port in dev_ports:
                origins += [f"http://localhost:{port}", f"http://127.0.0.1:{port}"]
        return list(dict.fromkeys(o for o in origins if o))

    @property
    def previous_secret_keys(self) -> list[str]:
        return [k.strip() for k in self.secret_key_previous.split(",") if k.strip()]

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def payments_mode(self) -> Literal["stripe", "local"]:
        return "stripe" if self.stripe_secret_key else "local"

    @property
    def mail_mode(self) -> Literal["smtp", "outbox"]:
        return "smtp" if self.smtp_host else "outbox"

    @property
    def google_enabled(self) -> bool:
        return bool(self.google_client_id)

    @property
    def backend_base_url(self) -> str:
        """Public URL of the backend's HTTP routes (OAuth callbacks, webhooks, assets).

        In production Reflex serves frontend and backend on one port, so it defaults to
        APP_BASE_URL; in development the backend listens on its own port (BACKEND_PORT).
        """
        if self.api_base_url:
            return self.api_base_url.rstrip("/")
        if self.is_production:
            return self.app_base_url.rstrip("/")
        # `reflex run --backend-port N` reaches the server process as REFLEX_BACKEND_PORT.
        port = os.environ.get("BACKEND_PORT") or os.environ.get("REFLEX_BACKEND_PORT") or "8000"
        return f"http://localhost:{port}"


def secret_entropy_bits(secret: str) -> float:
    """A conservative estimate of the randomness of `secret` in bits.

    The smaller of two views: characters' frequencies (Shannon: "aaaa..." carries nothing) and
    compressibility (a repeated word such as "password" x 6 compresses to a few bytes).
    """
    if not secret:
        return 0.0
    counts = Counter(secret)
    per_char = -sum(n / len(secret) * math.log2(n / len(secret)) for n in counts.values())
    compressed_bits = 8 * max(0, len(zlib.compress(secret.encode(), 9)) - _ZLIB_OVERHEAD_BYTES)
    return min(per_char * len(secret), compressed_bits)


def _origin(url: str) -> str:
    """scheme://host[:port] of a URL, lower-cased; "" when it has none."""
    from urllib.parse import urlsplit

    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        return ""
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def _is_local_url(url: str) -> bool:
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    return host in {h.strip("[]") for h in _LOCAL_HOSTS} or host.endswith(".localhost")


def _local_secret_key() -> str:
    """Development secret: generated once into an untracked file next to the project."""
    try:
        existing = SECRET_KEY_FILE.read_text().strip()
        if len(existing) >= MIN_SECRET_LENGTH:
            return existing
    except FileNotFoundError:
        pass
    value = secrets.token_urlsafe(48)
    SECRET_KEY_FILE.write_text(value + "\n")
    SECRET_KEY_FILE.chmod(0o600)
    return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings_cache() -> None:
    """Forget cached settings (tests that change the environment call this)."""
    get_settings.cache_clear()
