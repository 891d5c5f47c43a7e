"""Avro payloads of change events: schemas fetched once per id, records decoded, bitmaps expanded.

The Pub/Sub API sends ``changedFields``, ``nulledFields`` and ``diffFields`` of the
``ChangeEventHeader`` as bitmaps over the schema's field positions (``"0x..."`` for top-level
fields, ``"N-0x..."`` for the fields of the compound field at position N), not as names.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import fastavro

from handlers.errors import PermanentError

BITMAP_FIELDS = ("changedFields", "nulledFields", "diffFields")


class PayloadUnreadableError(PermanentError):
    """A payload that does not decode with the schema it names."""


class SchemaCache:
    """Parsed Avro schemas by schema id; an id not seen before is fetched (a changed schema has a new id)."""

    def __init__(self, fetch: Callable[[str], str]) -> None:
        self._fetch = fetch
        self._schemas: dict[str, Any] = {}
        self.fetched = 0

    def get(self, schema_id: str) -> Any:
        if schema_id not in self._schemas:
            self._schemas[schema_id] = fastavro.parse_schema(json.loads(self._fetch(schema_id)))
            self.fetched += 1
        return self._schemas[schema_id]

    def decode(self, schema_id: str, payload: bytes) -> dict[str, Any]:
        """The record, with the header's field bitmaps replaced by field names."""
        schema = self.get(schema_id)
        try:
            record = fastavro.schemaless_reader(io.BytesIO(payload), schema, None)
        except (EOFError, ValueError, TypeError, IndexError) as exc:
            raise PayloadUnreadableError(f"payload does not decode with schema {schema_id}: {exc}") from exc
        if not isinstance(record, dict):
            raise PayloadUnreadableError(f"payload with schema {schema_id} is not a record")
        header = record.get("ChangeEventHeader")
        if isinstance(header, dict):
            for name in BITMAP_FIELDS:
                header[name] = field_names(schema, header.get(name) or [])
        return record


def _record_fields(schema: Any) -> list[dict[str, Any]]:
    if isinstance(schema, list):  # a nullable union: the record member
        schema = next((s for s in schema if isinstance(s, dict) and s.get("type") == "record"), {})
    return list(schema.get("fields", [])) if isinstance(schema, dict) else []


def field_names(schema: Any, bitmaps: list[str]) -> list[str]:
    """Names the bitmaps point at: ``Name.LastName`` for a field inside a compound field."""
    top = _record_fields(schema)
    names: list[str] = []
    for bitmap in bitmaps:
        if not bitmap.startswith("0x"):  # a name already (some clients decode for us)
            names.append(bitmap)
            continue
        parent, _, bits = bitmap.rpartition("-")
        fields = top
        prefix = ""
        if parent:
            outer = top[int(parent)]
            fields, prefix = _record_fields(outer["type"]), outer["name"] + "."
        value = int(bits, 16)
        names += [prefix + f["name"] for i, f in enumerate(fields) if value >> i & 1]
    return names

