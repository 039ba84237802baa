"""Settings, validated once at start-up.

Sources, highest priority first:

1. environment variables ``FAIRWATCH_<NAME>`` (``FAIRWATCH_DATA_DIR=/var/lib/fairwatch``)
   and ``MONGODB_URI``;
2. ``.streamlit/secrets.toml``: top-level ``MONGODB_URI`` and a ``[fairwatch]`` table
   whose keys are the setting names in lower case (``data_dir = "..."``);
3. the defaults below.

A bad value stops start-up with a :class:`~monitoring_core.errors.ConfigError` that names
the setting and where its value came from.
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .errors import ConfigError

ENV_PREFIX = "FAIRWATCH_"
DEFAULT_SECRETS_FILE = Path(".streamlit") / "secrets.toml"


# -- Alerts (issue 13): where notifications go -------------------------------------------------

AlertRole = Literal["compliance_officer", "ml_lead", "cto", "executive"]
_ADDRESS = re.compile(r"[^@\s<>,;]+@[^@\s<>,;.]+(\.[^@\s<>,;.]+)*")


def _https_url(url: SecretStr) -> SecretStr:
    # The message never repeats the URL: an incoming-webhook URL is a credential. Plain
    # http is accepted on the loopback only (a local receiver in tests and benchmarks).
    parts = urlsplit(url.get_secret_value())
    local = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
    if not parts.hostname or not (parts.scheme == "https" or local):
        raise ValueError("must be an https:// URL with a host (the value is secret and not shown)")
    return url


def _email_address(address: str) -> str:
    if not _ADDRESS.fullmatch(address):
        raise ValueError(f"{address!r} is not an email address")
    return address


WebhookUrl = Annotated[SecretStr, AfterValidator(_https_url)]
EmailAddress = Annotated[str, AfterValidator(_email_address)]


class AlertContacts(BaseModel):
    """A model's own Slack webhook and recipients, over the global ones (``alert_models``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    slack_webhook_url: WebhookUrl | None = None
    recipients: dict[AlertRole, EmailAddress] = Field(default_factory=dict)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # Storage
    backend: Literal["auto", "embedded", "mongodb"] = Field(
        "auto", description="'auto' uses MongoDB when MONGODB_URI is set, else the embedded store")
    data_dir: Path = Field(Path("data"), description="folder of the embedded store (created on first use)")
    mongodb_uri: SecretStr | None = Field(
        None, validation_alias="MONGODB_URI", description="MongoDB or Atlas connection string")
    mongodb_database: str = Field("fairwatch", min_length=1, description="database name on MongoDB")
    mongodb_timeout_ms: int = Field(5000, gt=0, description="server selection timeout")

    # Demo
    seed_demo: bool = Field(True, description="seed the demo models when the app starts on an empty embedded store")

    # Prediction logger (SDK)
    sdk_batch_size: int = Field(10, gt=0, description="write a batch every N predictions...")
    sdk_flush_interval_s: float = Field(5.0, gt=0, description="...or every S seconds, whichever first")
    sdk_max_buffer: int = Field(100_000, gt=0, description="records held while the store is unreachable")

    # Retention (policy section 7)
    retention_prediction_days: int = Field(90, gt=0)
    retention_record_days: int = Field(5 * 365, gt=0)
    retention_audit_days: int = Field(5 * 365, gt=0)
    retention_alert_days: int = Field(365, gt=0, description="CRITICAL alerts are kept indefinitely")

    # Scheduler (monitoring_core.scheduler): "off" keeps the app's sidecar from running the
    # scheduled jobs, when `python -m monitoring_core scheduler` runs them for several replicas.
    scheduler: Literal["on", "off"] = Field("on", description="run the scheduled jobs inside the app process")
    scheduler_workers: int = Field(4, gt=0, le=64, description="threads of the scheduler's worker pool")

    # Audit log: the HMAC-SHA256 key of its entry signatures and checkpoints. Required
    # outside demo mode; in demo mode a public demo key stands in, labelled as such.
    audit_key: SecretStr | None = Field(None, min_length=16, description="FAIRWATCH_AUDIT_KEY, 16+ characters")
    # The app's sign-in cookie is signed with this key; the app refuses to start without one
    # outside demo mode (the CLI does not need it).
    cookie_key: SecretStr | None = Field(None, min_length=32, description="FAIRWATCH_COOKIE_KEY, 32+ characters")

    @property
    def demo_mode(self) -> bool:
        """The embedded store with demo seeding on (the defaults)."""
        return self.seed_demo and not self.uses_mongodb

    @model_validator(mode="after")
    def _audit_key_outside_demo(self) -> Settings:
        if self.audit_key is None and not self.demo_mode:
            # ConfigError, not ValueError: pydantic lets it through with this message intact.
            raise ConfigError("FAIRWATCH_AUDIT_KEY is not set: outside demo mode (MongoDB, or FAIRWATCH_SEED_DEMO "
                              "false) the audit log needs its own signing key. Generate one with "
                              "`python -c \"import secrets; print(secrets.token_hex(32))\"` and keep it secret")
        return self

    @field_validator("data_dir", mode="before")
    @classmethod
    def _data_dir_given(cls, value: Any) -> Any:
        # An empty value would silently mean the current folder.
        if isinstance(value, str) and not value.strip():
            raise ValueError("must not be empty (unset it to use the default folder 'data')")
        return value

    # Alerts (issue 13): channels, recipients by role, per-model overrides (keys in secrets.toml.example)
    slack_webhook_url: WebhookUrl | None = Field(None, description="Slack incoming-webhook URL (secret)")
    smtp_host: str | None = Field(None, description="SMTP server; no email is sent without it")
    smtp_port: int = Field(587, gt=0, lt=65536)
    smtp_starttls: bool = True
    smtp_username: str | None = Field(None, description="login when set")
    smtp_password: SecretStr | None = None
    smtp_from: EmailAddress = "fairwatch@localhost.localdomain"
    alert_recipients: dict[AlertRole, EmailAddress] = Field(default_factory=dict, description="address by role")
    alert_models: dict[str, AlertContacts] = Field(default_factory=dict, description="per-model overrides")
    dashboard_url: str = Field("http://localhost:8501", description="base URL of links in notifications")
    alert_dedup_hours: float = Field(6.0, gt=0, description="no second alert for a model+metric+severity within")
    alert_digest_time: time = Field(time(8, 0), description="UTC time of the daily WARNING digest")
    alert_send_timeout_s: float = Field(10.0, gt=0)
    alert_retry_max_hours: float = Field(24.0, gt=0, description="a failing delivery is retried for this long")

    def alert_contacts(self, model_id: str) -> AlertContacts:
        """The Slack webhook and recipients of ``model_id``: its overrides over the global ones."""
        own = self.alert_models.get(model_id, AlertContacts())
        return AlertContacts(slack_webhook_url=own.slack_webhook_url or self.slack_webhook_url,
                             recipients={**self.alert_recipients, **own.recipients})

    # Escalation (policy 3.2): who a CRITICAL incident is assigned to
    escalation_fairness_owner: str = Field("compliance-officer", min_length=1,
                                           description="user id of the compliance officer (CRITICAL fairness)")
    escalation_ml_owner: str = Field("ml-lead", min_length=1,
                                     description="user id of the ML lead (CRITICAL data, model, explanation)")

    @field_validator("mongodb_uri")
    @classmethod
    def _mongodb_scheme(cls, uri: SecretStr | None) -> SecretStr | None:
        if uri is not None and not uri.get_secret_value().startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError("must start with mongodb:// or mongodb+srv://")
        return uri

    @property
    def uses_mongodb(self) -> bool:
        if self.backend == "auto":
            return self.mongodb_uri is not None
        return self.backend == "mongodb"

    @property
    def database_path(self) -> Path:
        return self.data_dir / "fairwatch.db"

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        return init_settings, env_settings, _SecretsTomlSource(settings_cls)


class _SecretsTomlSource(PydanticBaseSettingsSource):
    """Reads ``.streamlit/secrets.toml`` (or the file named by ``FAIRWATCH_SECRETS_FILE``)."""

    def __init__(self, settings_cls: type[BaseSettings]):
        super().__init__(settings_cls)
        self.values = _read_secrets_file(secrets_file())

    def get_field_value(self, field, field_name):  # pragma: no cover - __call__ is used
        return self.values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.values)


def secrets_file() -> Path:
    return Path(os.environ.get(ENV_PREFIX + "SECRETS_FILE", DEFAULT_SECRETS_FILE))


def _read_secrets_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    values = {k.lower(): v for k, v in data.get("fairwatch", {}).items()}
    if "MONGODB_URI" in data:
        values["MONGODB_URI"] = data["MONGODB_URI"]
    return values


def load_settings(**overrides: Any) -> Settings:
    """Validated settings; raises :class:`ConfigError` naming each bad setting and its source."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "?"
            shown = "" if name in _SECRET_SETTINGS else f" (got {error.get('input')!r})"
            inner = "".join(f"[{part!r}]" for part in error["loc"][1:])
            problems.append(f"{_source_of(name)}{inner}: {error['msg']}{shown}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None


# Never echo these back: a connection string carries credentials.
_SECRET_SETTINGS = {"MONGODB_URI", "mongodb_uri", "audit_key", "cookie_key", "slack_webhook_url", "smtp_password",
                    "alert_models"}


def _source_of(name: str) -> str:
    if name == "MONGODB_URI":
        return "MONGODB_URI" if "MONGODB_URI" in os.environ else f"MONGODB_URI in {secrets_file()}"
    env_name = ENV_PREFIX + name.upper()
    return env_name if env_name in os.environ else f"{name} in [fairwatch] of {secrets_file()}"


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return load_settings()
