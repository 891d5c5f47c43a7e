"""Settings from ``WINBACK_*`` environment variables, validated once at start-up into a frozen object."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field, HttpUrl, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from handlers.errors import ConfigError


class Settings(BaseSettings):
    """Every knob of the worker. ``winback --help`` lists them with these descriptions."""

    model_config = SettingsConfigDict(env_prefix="WINBACK_", frozen=True, extra="ignore")

    amqp_url: SecretStr = Field(
        SecretStr("amqp://guest:guest@127.0.0.1:5672/%2F"),
        description="AMQP URL of the RabbitMQ broker (credentials are never logged).",
    )
    amqp_ca_bundle: Path | None = Field(
        None, description="CA bundle to verify an amqps:// broker's certificate (private CA)."
    )
    exchange: str = Field("crm.events", description="Durable topic exchange the CRM publishes to.")
    queue: str = Field(
        "winback.events", description="Name of the work queues: partitions QUEUE.p0 .. QUEUE.pN-1, "
        "fed by the exchange QUEUE.hash; retry and timer queues start with it too.")
    partitions: int = Field(
        8, ge=1, le=256, description="Partition queues events are spread over by account, each "
        "consumed by one replica at a time (fixed at deploy time: changing it moves accounts).")
    parking_queue: str = Field("winback.parked", description="Queue of parked messages.")
    dead_letter_exchange: str = Field("winback.dlx", description="Dead-letter exchange.")
    retry_delays: tuple[float, ...] = Field(
        (5.0, 30.0, 120.0, 600.0),
        description="Broker-level retry delays in seconds, one per attempt (JSON list).",
    )
    delivery_limit: int = Field(
        20, ge=1, description="Redeliveries before the broker parks a message that kills workers."
    )
    rebalance_seconds: float = Field(
        5.0, gt=0, le=300, description="How often a replica announces itself and, active on more "
        "than its share of the partitions, hands one over to a replica standing by.")
    prefetch: int = Field(
        0, ge=0, le=65535,
        description="Unacked deliveries per worker; 0 = 2 * crm_concurrency * batch_size.",
    )
    crm_concurrency: int = Field(
        12, ge=1, le=25,
        description="CRM batches in flight at once, each on its own lane of accounts "
        "(Salesforce allows 25 concurrent long-running calls per org; 12 keeps a 150 ms CRM "
        "busy within 150 MB, see the README's Performance).",
    )
    batch_size: int = Field(100, ge=1, le=1000, description="Events handled per CRM batch.")
    batch_wait_ms: int = Field(50, ge=0, le=5000, description="How long to gather a batch.")
    heartbeat: int = Field(30, ge=1, le=600, description="AMQP heartbeat interval in seconds.")
    grace_period: float = Field(
        25.0, gt=0, description="Seconds to finish in-flight messages after SIGTERM."
    )
    stall_limit: float = Field(
        300.0, gt=0, description="Seconds without a settled message, with messages waiting, before "
        "/healthz fails (a stuck processing thread gets the pod restarted).",
    )
    crm: Literal["local", "salesforce"] = Field("local", description="CRM adapter.")
    local_crm_path: Path = Field(
        Path("winback-crm.sqlite3"), description="SQLite file of the embedded CRM."
    )
    rules: Path = Field(Path("config/rules.yaml"), description="Rules file (YAML).")
    rules_poll_seconds: float = Field(2.0, gt=0, description="How often to look for new rules.")
    metrics_port: int = Field(0, ge=0, le=65535, description="Prometheus/health port; 0 = off.")
    figures_seconds: float = Field(
        300.0, ge=0, description="How often the worker reads every plan and task to update the "
        "figure gauges and each plan's acknowledgement fields (Acknowledged_At__c, Acks_*__c); "
        "0 = never.",
    )
    log_format: Literal["auto", "json", "console"] = Field("auto", description="Log format.")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")

    salesforce_login_url: HttpUrl = Field(
        HttpUrl("https://login.salesforce.com"), description="OAuth login URL (JWT bearer flow)."
    )
    salesforce_client_id: str | None = Field(None, description="Connected app consumer key.")
    salesforce_username: str | None = Field(None, description="Integration user's username.")
    salesforce_private_key_file: Path | None = Field(None, description="PEM key for the JWT.")
    salesforce_instance_url: HttpUrl | None = Field(None, description="Instance URL (token mode).")
    salesforce_access_token: SecretStr | None = Field(None, description="Access token (token mode).")
    salesforce_api_version: str = Field("62.0", pattern=r"^\d+\.\d$", description="REST API version.")
    salesforce_ca_bundle: Path | None = Field(None, description="CA bundle for a private CA.")
    salesforce_timeout: float = Field(30.0, gt=0, description="Seconds per Salesforce HTTP call.")
    salesforce_api_floor: int = Field(
        5000, ge=0, description="Remaining daily API calls below which the worker slows down."
    )

    @property
    def in_flight_limit(self) -> int:
        """Unacked deliveries per worker: what the CRM lanes can hold, two batches each, unless
        set. Shared among the partitions (``partition_prefetch`` each)."""
        return self.prefetch or min(2 * self.crm_concurrency * self.batch_size, 65535)

    @property
    def partition_prefetch(self) -> int:
        """The broker prefetch of each partition's consumer: the in-flight limit shared out, so
        a replica active on every partition holds at most ``in_flight_limit`` (quorum queues
        have no per-channel prefetch)."""
        return max(1, self.in_flight_limit // self.partitions)

    @model_validator(mode="after")
    def _salesforce_mode_is_complete(self) -> Settings:
        if self.crm != "salesforce":
            return self
        jwt = (self.salesforce_client_id, self.salesforce_username, self.salesforce_private_key_file)
        token = (self.salesforce_instance_url, self.salesforce_access_token)
        if all(token) or all(jwt):
            return self
        raise ValueError(
            "WINBACK_CRM=salesforce needs either WINBACK_SALESFORCE_INSTANCE_URL and "
            "WINBACK_SALESFORCE_ACCESS_TOKEN, or WINBACK_SALESFORCE_CLIENT_ID, "
            "WINBACK_SALESFORCE_USERNAME and WINBACK_SALESFORCE_PRIVATE_KEY_FILE"
        )


S = TypeVar("S", bound=Settings)


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning any validation problem into one clear ConfigError line."""
    return build_settings(Settings, **overrides)


def build_settings(cls: type[S], **overrides: object) -> S:
    """``load_settings`` for a class of settings that extends the worker's (the bridge's)."""
    try:
        return cls(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            name = "_".join(str(p) for p in err["loc"]).upper()
            where = f"WINBACK_{name}" if name else "settings"
            problems.append(f"{where}: {err['msg']}")
        raise ConfigError("invalid setting: " + "; ".join(problems)) from exc


def settings_help() -> list[tuple[str, str, str]]:
    """(variable, default, description) for every setting, for ``--help`` and the README."""
    rows = []
    for name, info in Settings.model_fields.items():
        default = info.default
        if isinstance(default, SecretStr):  # a public default (guest on localhost), not a secret
            default = default.get_secret_value()
        if isinstance(default, tuple):
            default = json.dumps([int(v) if float(v).is_integer() else v for v in default])
        rows.append((f"WINBACK_{name.upper()}", "" if default is None else str(default),
                     info.description or ""))
    return rows


__all__ = ["Settings", "build_settings", "load_settings", "settings_help"]
