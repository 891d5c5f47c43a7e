"""The bridge's settings: the worker's (broker, Salesforce login) plus where and what to subscribe."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from worker.settings import Settings


class BridgeSettings(Settings):
    """``winback bridge --help`` lists these with the worker's settings they share."""

    pubsub_address: str = Field(
        "api.pubsub.salesforce.com:7443", description="Pub/Sub API host:port (gRPC over TLS)."
    )
    pubsub_ca_bundle: Path | None = Field(None, description="CA bundle for a private Pub/Sub CA.")
    salesforce_org_id: str | None = Field(
        None, pattern=r"^00D[a-zA-Z0-9]{12,17}$",
        description="Org id (00D...), sent as the Pub/Sub tenantid header.",
    )
    bridge_topics: tuple[str, ...] = Field(
        ("/data/ChangeEvents",), description="Channels to subscribe to (JSON list)."
    )
    bridge_sources: Path = Field(
        Path("config/sources.yaml"), description="Which changes become which events (YAML)."
    )
    bridge_batch: int = Field(100, ge=1, le=100, description="Events asked for per FetchRequest.")
    bridge_replay_queue: str = Field(
        "winback.bridge.replay", description="Broker queue holding the last stored replay id."
    )
    bridge_retention_hours: float = Field(
        72.0, gt=0, description="How long the event bus keeps events (a stored id older restarts)."
    )
    bridge_max_backoff: float = Field(30.0, gt=0, description="Longest wait between reconnects.")
