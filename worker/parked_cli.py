"""``winback parked``: list, replay and purge parked messages from the command line."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import wraps
from typing import Any

import click
import pika
from pika.exceptions import AMQPError, ChannelClosedByBroker
from rich.console import Console
from rich.table import Table

from handlers.errors import ConfigError
from worker.amqp import connection_parameters
from worker.parked import ParkedMessage, ParkingQueue, Refusal, Selection, operator
from worker.settings import Settings, load_settings

AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
COLUMNS = ("id", "type", "account", "reason", "error", "attempts", "parked_at")


class AgeType(click.ParamType):  # type: ignore[type-arg]
    """A duration like ``90s``, ``30m``, ``2h`` or ``7d``."""

    name = "age"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            return value
        match = AGE.match(str(value).strip())
        if match is None:
            self.fail(f"{value!r} is not a duration like 90s, 30m, 2h or 7d", param, ctx)
        return timedelta(**{UNITS[match[2]]: float(match[1])})


def _selection_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The filters every subcommand shares, turned into one ``Selection`` argument."""

    @click.option("--id", "ids", multiple=True, help="Only this event id (repeatable).")
    @click.option("--reason", default=None, help="Reason or error class contains this (any case).")
    @click.option("--type", "event_type", default=None,
                  help="Only this event type (crm.customer.lapsed or customer.lapsed).")
    @click.option("--account", default=None, help="Only this account id.")
    @click.option("--older-than", type=AgeType(), default=None, help="Parked longer ago than this (2h).")
    @click.option("--newer-than", type=AgeType(), default=None, help="Parked more recently than this.")
    @wraps(func)
    def wrapper(ids: tuple[str, ...], reason: str | None, event_type: str | None,
                account: str | None, older_than: timedelta | None, newer_than: timedelta | None,
                **kwargs: Any) -> Any:
        selection = Selection(ids=frozenset(ids), reason=reason, type=event_type, account=account,
                              older_than=older_than, newer_than=newer_than)
        return func(selection=selection, **kwargs)

    return wrapper


def _narrowed(selection: Selection, everything: bool) -> None:
    """Replay and purge act on everything only when asked to in so many words."""
    if not everything and selection == Selection(now=selection.now):
        raise click.UsageError("say which messages (--id, --reason, --type, --account, --older-than, "
                               "--newer-than), or --all for every parked message")


@contextmanager
def _parking_queue() -> Iterator[tuple[ParkingQueue, Settings]]:
    try:
        settings = load_settings()
    except ConfigError as exc:
        click.echo(f"winback: {exc}", err=True)
        sys.exit(2)
    try:
        connection = pika.BlockingConnection(connection_parameters(settings, "winback-parked"))
    except AMQPError as exc:
        click.echo(f"winback: cannot reach the broker: {exc!r}", err=True)
        sys.exit(2)
    try:
        channel = connection.channel()
        try:
            channel.queue_declare(settings.parking_queue, passive=True)
        except ChannelClosedByBroker as exc:
            click.echo(f"winback: no parking queue {settings.parking_queue!r}: {exc.reply_text}", err=True)
            sys.exit(2)
        yield ParkingQueue(channel, settings.parking_queue, settings.exchange), settings
    finally:
        if connection.is_open:
            connection.close()  # every message browsed and not settled goes back to the queue


def _print_table(messages: list[ParkedMessage]) -> None:
    table = Table(title=f"{len(messages)} parked message(s)")
    for column in COLUMNS:
        table.add_column(column.replace("_", " "), overflow="fold")
    for message in messages:
        row = message.row()
        table.add_row(*("" if row[c] is None else str(row[c]) for c in COLUMNS))
    Console().print(table)


@click.group()
def parked_group() -> None:
    """Work the parking queue: see why messages were parked, replay them once fixed, or purge."""


@parked_group.command("list")
@_selection_options
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Show at most this many.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def list_parked(selection: Selection, limit: int | None, fmt: str) -> None:
    """Show parked messages: id, type, account, reason, error class, attempts, parked at.
    Nothing is removed: every message goes back to the queue when the command ends."""
    with _parking_queue() as (parking, _):
        messages = list(parking.browse(selection, limit))
    if fmt == "json":
        click.echo(json.dumps([m.row() for m in messages], indent=2))
    else:
        _print_table(messages)


@parked_group.command("replay")
@_selection_options
@click.option("--all", "everything", is_flag=True, help="Every parked message (with the filters, if any).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Replay at most this many.")
@click.option("--dry-run", is_flag=True, help="Say what would be replayed or refused; change nothing.")
def replay_parked(selection: Selection, everything: bool, limit: int | None, dry_run: bool) -> None:
    """Re-publish parked messages to the exchange with their original routing key.

    Each is confirmed by the broker before its parked copy is removed; a message that still fails
    validation is refused with the reason and stays parked. Exit 1 if any was refused.
    """
    _narrowed(selection, everything)
    replayed = refused = 0
    verb = "would replay" if dry_run else "replayed"
    with _parking_queue() as (parking, settings):
        for outcome in parking.replay(parking.browse(selection, limit), operator(), dry_run):
            if isinstance(outcome, Refusal):
                refused += 1
                click.echo(f"refused {outcome.message.id}: {outcome.why}")
            else:
                replayed += 1
                click.echo(f"{verb} {outcome.id} ({outcome.type}, {outcome.account}) "
                           f"to {settings.exchange} {outcome.routing_key}")
    click.echo(f"{verb} {replayed}, refused {refused}")
    if refused:
        sys.exit(1)


@parked_group.command("purge")
@_selection_options
@click.option("--all", "everything", is_flag=True, help="Every parked message (with the filters, if any).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge_parked(selection: Selection, everything: bool, yes: bool) -> None:
    """Delete the selected parked messages for good, after showing them and asking."""
    _narrowed(selection, everything)
    with _parking_queue() as (parking, _):
        messages = list(parking.browse(selection))
        if not messages:
            click.echo("no parked message matches")
            return
        _print_table(messages)
        if not yes and not click.confirm(f"Delete these {len(messages)} parked message(s) for good?"):
            click.echo("nothing deleted")
            return
        click.echo(f"purged {parking.purge(messages)}")
