"""AMQP connection parameters from the settings: heartbeat, a name, and TLS with a private CA."""

from __future__ import annotations

import ssl

import pika

from handlers.errors import ConfigError
from worker.settings import Settings


def connection_parameters(settings: Settings, name: str = "winback-worker") -> pika.URLParameters:
    """Parameters for ``settings.amqp_url``; an ``amqps://`` URL verifies the broker's certificate
    against ``WINBACK_AMQP_CA_BUNDLE`` when one is set (the system's CAs otherwise); an unreadable
    bundle is a ConfigError."""
    params = pika.URLParameters(settings.amqp_url.get_secret_value())
    params.heartbeat = settings.heartbeat
    params.blocked_connection_timeout = 300
    params.client_properties = {"connection_name": name}
    bundle = settings.amqp_ca_bundle
    if params.ssl_options is not None and bundle is not None:
        try:
            context = ssl.create_default_context(cafile=str(bundle))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"WINBACK_AMQP_CA_BUNDLE: cannot read {bundle}: {exc}") from exc
        params.ssl_options = pika.SSLOptions(context, server_hostname=params.host)
    return params
