"""The bridge's Prometheus metrics, on their own registry so tests can read them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class BridgeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.received = Counter("winback_bridge_changes_received", "Change events received.",
                                ["topic"], registry=self.registry)
        self.published = Counter("winback_bridge_events_published", "CloudEvents confirmed by "
                                 "the broker.", ["type"], registry=self.registry)
        self.ignored = Counter("winback_bridge_changes_ignored", "Changes no source picks.",
                               ["entity"], registry=self.registry)
        self.unmapped = Counter("winback_bridge_changes_unmapped", "Changes a source picked but "
                                "could not turn into an event.", ["source"], registry=self.registry)
        self.reconnects = Counter("winback_bridge_reconnects", "Subscriptions started again.",
                                  ["reason"], registry=self.registry)
        self.replay_expired = Counter("winback_bridge_replay_expired", "Starts from EARLIEST "
                                      "because the stored replay id was past retention or refused.",
                                      registry=self.registry)
        self.replay_lag = Gauge("winback_bridge_replay_lag_seconds", "From commit in Salesforce to "
                                "published, for the newest change handled; 0 once caught up.",
                                ["topic"], registry=self.registry)
        self.subscribed = Gauge("winback_bridge_subscribed", "1 while the topic's subscription is "
                                "open.", ["topic"], registry=self.registry)
        self.possibly_missed = Gauge("winback_bridge_possibly_missed_seconds", "Length of the "
                                     "window whose changes may have been lost past retention.",
                                     registry=self.registry)

    def value(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0
