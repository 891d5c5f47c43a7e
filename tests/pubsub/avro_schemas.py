"""Change event schemas as Salesforce builds them: a ChangeEventHeader, then every field nullable."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import fastavro

from tests.sfserver.schema import SObject

_HEADER = {
    "type": "record", "name": "ChangeEventHeader", "fields": [
        {"name": "entityName", "type": "string"},
        {"name": "recordIds", "type": {"type": "array", "items": "string"}},
        {"name": "changeType", "type": {"type": "enum", "name": "ChangeType", "symbols": [
            "CREATE", "UPDATE", "DELETE", "UNDELETE", "GAP_CREATE", "GAP_UPDATE", "GAP_DELETE",
            "GAP_UNDELETE", "GAP_OVERFLOW"]}},
        {"name": "changeOrigin", "type": "string"},
        {"name": "transactionKey", "type": "string"},
        {"name": "sequenceNumber", "type": "int"},
        {"name": "commitTimestamp", "type": "long"},
        {"name": "commitNumber", "type": "long"},
        {"name": "commitUser", "type": "string"},
        {"name": "nulledFields", "type": {"type": "array", "items": "string"}},
        {"name": "diffFields", "type": {"type": "array", "items": "string"}},
        {"name": "changedFields", "type": {"type": "array", "items": "string"}},
    ],
}
# Change events carry dates and times as epoch milliseconds, numbers as doubles.
_AVRO = {"datetime": "long", "date": "int", "double": "double", "int": "int", "boolean": "boolean"}


def change_schema(obj: SObject) -> dict[str, Any]:
    fields: list[dict[str, Any]] = [{"name": "ChangeEventHeader", "type": _HEADER}]
    for f in obj.fields.values():
        if f.name == "Id":
            continue
        fields.append({"name": f.name, "type": ["null", _AVRO.get(f.type, "string")], "default": None})
    return {"type": "record", "name": f"{obj.name}ChangeEvent", "namespace": "com.sforce.eventbus",
            "fields": fields}


def schema_id(schema: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(schema, sort_keys=True).encode()).hexdigest()[:22]


def encode(schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), record)
    return out.getvalue()


def changed_bitmap(schema: dict[str, Any], names: list[str]) -> list[str]:
    """Field names as the Pub/Sub API sends them: one hex bitmap over top-level positions."""
    positions = {f["name"]: i for i, f in enumerate(schema["fields"])}
    value = sum(1 << positions[n] for n in names if n in positions)
    return [hex(value)] if value else []
