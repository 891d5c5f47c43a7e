"""The test org's data: records per object, Salesforce's write validations, undoable transactions."""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tests.sfserver.schema import Field, SObject

HALTED_MESSAGE = "The transaction was rolled back since another operation in the same transaction failed."
ID_PATTERN = re.compile(r"^[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?$")


class SfError(Exception):
    """A Salesforce error response: HTTP status and the ``[{message, errorCode, fields}]`` body."""

    def __init__(self, status: int, code: str, message: str, fields: tuple[str, ...] = ()) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message, self.fields = status, code, message, fields

    def body(self) -> list[dict[str, Any]]:
        return [{"message": self.message, "errorCode": self.code, "fields": list(self.fields)}]


def not_found() -> SfError:
    return SfError(404, "NOT_FOUND", "The requested resource does not exist")


class Transaction:
    """An undo log: every write records how to take it back."""

    def __init__(self) -> None:
        self.undo: list[Callable[[], None]] = []
        self.changes: list[Committed] = []  # what Change Data Capture reports once it commits


Committed = tuple[str, str, dict[str, Any], list[str]]  # change type, object, row, fields written


RecordHook = Callable[[str, dict[str, Any]], None]


class Org:
    """Records of one org, guarded by one lock (the HTTP server is threaded)."""

    def __init__(self, schema: dict[str, SObject], user_id: str, strict_ids: bool = True) -> None:
        self.schema = schema
        self.user_id = user_id
        # Off only where a test says why: then ids are taken as any text, as before Salesforce.
        self.strict_ids = strict_ids
        self._prefixes = {obj.prefix: name for name, obj in schema.items()}
        self.lock = threading.RLock()
        self.tables: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in schema}
        self.before_write: list[RecordHook] = []  # fault injection: may raise SfError
        self.after_commit: list[Callable[[list[Committed]], None]] = []  # a change feed
        self._index: dict[tuple[str, str], dict[Any, str]] = {}  # unique field values -> record id
        # Each record's place in its table's order (insertion, a write moving it to the end), so
        # rows found by the index come in the order a scan of the table finds them.
        self._places: dict[str, dict[str, int]] = {name: {} for name in schema}
        self._lookups: dict[tuple[str, str], dict[Any, set[str]]] = {}  # (table, field) -> ids
        self._counter = 0
        self._placed = 0

    def sobject(self, name: str) -> SObject:
        if name not in self.schema:
            raise not_found()
        return self.schema[name]

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """All writes inside commit together; an exception undoes every one of them."""
        with self.lock:
            tx = Transaction()
            try:
                yield tx
            except BaseException:
                for undo in reversed(tx.undo):
                    undo()
                raise
            for hook in list(self.after_commit):
                hook(tx.changes)

    def create(self, tx: Transaction, name: str, body: dict[str, Any]) -> str:
        obj = self.sobject(name)
        if not obj.createable:
            raise SfError(400, "INSUFFICIENT_ACCESS_OR_READONLY",
                          f"insufficient access rights on object: {name}")
        values = self._values(obj, body, "createable")
        self._run_hooks(name, values)
        self._check_required(obj, values)
        self._check_references(obj, values)
        self._counter += 1
        record_id = f"{obj.prefix}5g{self._counter:010d}AAA"
        row = {"Id": record_id, "CreatedById": self.user_id, "CreatedDate": _now(),
               **self._defaults(obj), **values}
        if name == "Task":
            _close_task(row, {})
        if name == "Event":
            _end_event(row)
        if name == "Case":
            row["IsClosed"] = row.get("Status") == "Closed"
        self._put(obj, row)
        tx.undo.append(lambda: self._remove(obj, record_id))
        tx.changes.append(("CREATE", name, dict(row), list(values)))
        return record_id

    def update(self, tx: Transaction, name: str, record_id: str, body: dict[str, Any]) -> None:
        obj = self.sobject(name)
        table = self.tables[name]
        if record_id not in table:
            raise not_found()
        if not obj.updateable:
            raise SfError(400, "INSUFFICIENT_ACCESS_OR_READONLY",
                          f"insufficient access rights on object id: {record_id}")
        values = self._values(obj, body, "updateable")
        self._run_hooks(name, {**table[record_id], **values})
        self._check_references(obj, values)
        before = table[record_id]
        after = {**before, **values}
        if name == "Task":
            _close_task(after, before)
        if name == "Event":
            _end_event(after)
        if name == "Case":
            after["IsClosed"] = after.get("Status") == "Closed"
        self._remove(obj, record_id)
        try:
            self._put(obj, after)
        except SfError:
            self._put(obj, before)
            raise
        tx.undo.append(lambda: (self._remove(obj, record_id), self._put(obj, before)))
        tx.changes.append(("UPDATE", name, {**before, **values}, list(values)))

    def upsert(self, tx: Transaction, name: str, key_field: str, key: str,
               body: dict[str, Any]) -> tuple[str, bool]:
        obj = self.sobject(name)
        info = obj.fields.get(key_field)
        if info is None or not info.external_id:
            raise SfError(404, "NOT_FOUND", f"Provided external ID field does not exist or is "
                          f"not accessible: {key_field}")
        if key_field in body and body[key_field] != key:
            raise SfError(400, "INVALID_FIELD", f"The value of {key_field} in the body does not "
                          "match the URL")
        found = self._index.get((name, key_field), {}).get(key)
        if found is None and not info.unique:
            found = next((i for i, row in self.tables[name].items() if row.get(key_field) == key),
                         None)
        if found is not None:
            self.update(tx, name, found, body)
            return found, False
        return self.create(tx, name, {**body, key_field: key}), True

    def seed(self, name: str, **values: Any) -> str:
        """Put a record in the org as its admins would (a user, an account...); returns its id."""
        with self.lock:
            obj = self.sobject(name)
            self._counter += 1
            record_id = values.pop("Id", None) or f"{obj.prefix}5g{self._counter:010d}AAA"
            row = {"Id": record_id, "CreatedById": self.user_id, "CreatedDate": _now(),
                   **self._defaults(obj), **values}
            self._put(obj, row)
            return str(record_id)

    def get(self, name: str, record_id: str) -> dict[str, Any]:
        row = self.tables[self.sobject(name).name].get(record_id)
        if row is None:
            raise not_found()
        return dict(row)

    def complete_task(self, key: str, at: datetime) -> None:
        """What a user closing the task ``key`` at ``at`` leaves behind (tests choose the time)."""
        with self.lock:
            for row in self.tables["Task"].values():
                if row.get("Winback_Key__c") == key:
                    self.edit("Task", row["Id"], {
                        "Status": "Completed", "IsClosed": True,
                        "CompletedDateTime": _datetime("CompletedDateTime", at.isoformat())})
                    return
        raise KeyError(key)

    def candidates(self, obj: SObject, where: tuple[tuple[str, str, Any], ...]
                   ) -> list[dict[str, Any]]:
        """The rows a query with ``where`` must look at, in table order (call with the lock held).

        Every row, unless a condition is ``=`` or ``IN``: then only the rows holding those values,
        found by a lookup of that field (made at its first such query, kept by every write since).
        The caller still tests each row against the whole ``where``, so the answer is the scan's;
        the lookup only spares reading the rest of tables that grow with every event (a bench run
        writes hundreds of thousands of rows), as Salesforce's own indexes spare it."""
        table = self.tables[obj.name]
        for name, op, value in where:
            if op not in ("=", "IN") or name not in obj.fields:
                continue  # an unknown field is the query's error, said by soql.run
            lookup = self._lookup(obj.name, name)
            ids = {i for v in ((value,) if op == "=" else value) for i in lookup.get(v, ())}
            places = self._places[obj.name]
            return [table[i] for i in sorted(ids, key=places.__getitem__)]
        return list(table.values())

    def edit(self, name: str, record_id: str, values: dict[str, Any]) -> dict[str, Any]:
        """Change a stored row as someone in the org would, past the API's checks (a user's own
        edit, a test's set-up); returns the row as it was."""
        with self.lock:
            obj = self.sobject(name)
            before = self.tables[name][record_id]
            self._unlook(obj.name, before)
            self.tables[name][record_id] = row = {**before, **values}
            self._look(obj.name, row)
            return before

    def _lookup(self, table: str, name: str) -> dict[Any, set[str]]:
        lookup = self._lookups.get((table, name))
        if lookup is None:
            lookup = self._lookups[(table, name)] = {}
            for row in self.tables[table].values():
                lookup.setdefault(row.get(name), set()).add(row["Id"])
        return lookup

    def _look(self, table: str, row: dict[str, Any]) -> None:
        for (of, name), lookup in self._lookups.items():
            if of == table:
                lookup.setdefault(row.get(name), set()).add(row["Id"])

    def _unlook(self, table: str, row: dict[str, Any]) -> None:
        for (of, name), lookup in self._lookups.items():
            if of == table:
                lookup.get(row.get(name), set()).discard(row["Id"])

    def rows(self, name: str) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(row) for row in self.tables[name].values()]

    def _run_hooks(self, name: str, values: dict[str, Any]) -> None:
        for hook in list(self.before_write):
            hook(name, values)

    def _defaults(self, obj: SObject) -> dict[str, Any]:
        defaults: dict[str, Any] = {"OwnerId": self.user_id} if "OwnerId" in obj.fields else {}
        for name, f in obj.fields.items():
            if f.type == "boolean":
                defaults[name] = False
        return defaults

    def _values(self, obj: SObject, body: dict[str, Any], access: str) -> dict[str, Any]:
        values = {}
        for name, value in body.items():
            if name == "attributes":
                continue
            if name.endswith("__r") and isinstance(value, dict):
                name, value = self._by_external_id(obj, name, value)
            f = obj.fields.get(name)
            if f is None:
                raise SfError(400, "INVALID_FIELD",
                              f"No such column '{name}' on sobject of type {obj.name}")
            if not getattr(f, access):
                raise SfError(400, "INVALID_FIELD_FOR_INSERT_UPDATE",
                              f"Unable to create/update fields: {name}. Please check the security "
                              "settings of this field and verify that it is read/write for your "
                              "profile or permission set.", (name,))
            values[name] = self._value(f, value)
        return values

    def _by_external_id(self, obj: SObject, relationship: str, value: dict[str, Any]
                        ) -> tuple[str, str]:
        """``"Plan__r": {"Plan_Key__c": "k"}`` names its parent by an External ID: the parent's id."""
        name = relationship.removesuffix("__r") + "__c"
        f = obj.fields.get(name)
        if f is None or not f.reference_to:
            raise SfError(400, "INVALID_FIELD", f"No such column '{relationship}' on sobject of "
                          f"type {obj.name}")
        target = self.sobject(f.reference_to)
        if len(value) != 1:
            raise SfError(400, "INVALID_FIELD", f"{relationship}: name the parent by one External ID")
        ((key_field, key),) = value.items()
        info = target.fields.get(key_field)
        if info is None or not info.external_id:
            raise SfError(400, "INVALID_FIELD", f"{key_field} is not an External ID of {target.name}")
        found = next((row["Id"] for row in self.candidates(target, ((key_field, "=", key),))), None)
        if found is None:
            raise SfError(400, "INVALID_FIELD", f"Foreign key external ID: {key} not found for "
                          f"field {key_field} in entity {target.name}", (relationship,))
        return name, found

    def _value(self, f: Field, value: Any) -> Any:
        if value is None:
            return None
        if f.type in ("string", "textarea") and len(str(value)) > f.length:
            raise SfError(400, "STRING_TOO_LONG", f"{f.name}: data value too large: "
                          f"{str(value)[:40]}... (max length={f.length})", (f.name,))
        if f.type == "picklist" and f.values and value not in f.values:
            raise SfError(400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                          f"{f.name}: bad value for restricted picklist field: {value}", (f.name,))
        if f.type == "reference" and self.strict_ids and not ID_PATTERN.match(str(value)):
            raise SfError(400, "MALFORMED_ID", f"{f.name}: id value of incorrect type: {value}",
                          (f.name,))
        if f.type == "datetime":
            return _datetime(f.name, value)
        if f.type == "date":
            return date.fromisoformat(str(value)).isoformat()
        if f.type in ("double", "int"):
            return float(value) if f.type == "double" else int(value)
        return value

    def _check_references(self, obj: SObject, values: dict[str, Any]) -> None:
        """Every id names a record the org has; an activity's owner is an active user."""
        if not self.strict_ids:
            return
        for name, value in values.items():
            f = obj.fields[name]
            if f.type != "reference" or value in (None, ""):
                continue
            target = self._prefixes.get(str(value)[:3])
            row = self.tables[target].get(_full_id(str(value))) if target else None
            if row is None:
                raise SfError(400, "INVALID_CROSS_REFERENCE_KEY",
                              f"invalid cross reference id: {value}", (name,))
            if name == "OwnerId" and obj.name in ("Task", "Event"):
                self._check_activity_owner(target or "", row)
            elif name == "OwnerId" and obj.name == "Case":
                self._check_case_owner(target or "", row)

    def _check_activity_owner(self, target: str, row: dict[str, Any]) -> None:
        if target != "User":  # a queue (00G) or anything else: Salesforce's words for it
            raise SfError(400, "FIELD_INTEGRITY_EXCEPTION",
                          f"Assigned To ID: id value of incorrect type: {row['Id']}", ("OwnerId",))
        if not row.get("IsActive"):
            raise SfError(400, "INACTIVE_OWNER_OR_USER",
                          f"operation performed with inactive user [{row['Id']}] as owner of "
                          "task", ("OwnerId",))

    def _check_case_owner(self, target: str, row: dict[str, Any]) -> None:
        """A Case is owned by an active user or by a queue whose Supported Objects hold Case."""
        if target == "User":
            self._check_activity_owner(target, row)
            return
        takes_cases = target == "Group" and row.get("Type") == "Queue" and any(
            q.get("QueueId") == row["Id"] and q.get("SobjectType") == "Case"
            for q in self.tables["QueueSobject"].values())
        if not takes_cases:
            raise SfError(400, "FIELD_INTEGRITY_EXCEPTION",
                          f"Owner ID: id value of incorrect type: {row['Id']}", ("OwnerId",))

    def _check_required(self, obj: SObject, values: dict[str, Any]) -> None:
        missing = [group[0] for group in obj.required
                   if all(values.get(name) in (None, "") for name in group)]
        if missing:
            raise SfError(400, "REQUIRED_FIELD_MISSING",
                          f"Required fields are missing: [{', '.join(missing)}]", tuple(missing))

    def _put(self, obj: SObject, row: dict[str, Any]) -> None:
        """Store ``row``, refusing a value a unique field already holds on another record."""
        for name, f in obj.fields.items():
            value = row.get(name)
            other = self._index.get((obj.name, name), {}).get(value) if f.unique else None
            if other is not None and other != row["Id"]:
                raise SfError(400, "DUPLICATE_VALUE", f"duplicate value found: {name} "
                              f"duplicates value on record with id: {other}", (name,))
        together = tuple(row.get(n) for n in obj.unique_together)
        for other in self.tables[obj.name].values() if obj.unique_together else ():
            if other["Id"] != row["Id"] and tuple(other.get(n) for n in obj.unique_together) == together:
                raise SfError(400, "DUPLICATE_VALUE", "Already a campaign member.")
        for name, f in obj.fields.items():
            if f.unique and row.get(name) not in (None, ""):
                self._index.setdefault((obj.name, name), {})[row[name]] = row["Id"]
        if row["Id"] not in self.tables[obj.name]:
            self._placed += 1
            self._places[obj.name][row["Id"]] = self._placed
        else:
            self._unlook(obj.name, self.tables[obj.name][row["Id"]])
        self.tables[obj.name][row["Id"]] = row
        self._look(obj.name, row)

    def _remove(self, obj: SObject, record_id: str) -> None:
        row = self.tables[obj.name].pop(record_id)
        del self._places[obj.name][record_id]
        self._unlook(obj.name, row)
        for name, f in obj.fields.items():
            if f.unique and row.get(name) not in (None, ""):
                self._index.get((obj.name, name), {}).pop(row[name], None)


def _close_task(row: dict[str, Any], before: dict[str, Any]) -> None:
    """Salesforce derives IsClosed from the status and stamps CompletedDateTime when a task closes."""
    row["IsClosed"] = row.get("Status") == "Completed"
    if row["IsClosed"] and not before.get("IsClosed"):
        row["CompletedDateTime"] = _now()
    elif not row["IsClosed"]:
        row["CompletedDateTime"] = None


def _end_event(row: dict[str, Any]) -> None:
    """Salesforce keeps EndDateTime at StartDateTime plus DurationInMinutes."""
    start, minutes = row.get("StartDateTime"), row.get("DurationInMinutes")
    if start and minutes is not None:
        end = datetime.fromisoformat(str(start)) + timedelta(minutes=int(minutes))
        row["EndDateTime"] = _datetime("EndDateTime", end.isoformat())


def _full_id(value: str) -> str:
    # The test org keys records by their 18-character id; a 15-character one names the same.
    return value if len(value) == 18 else value + "AAA"


def _now() -> str:
    return _stamp(int(time.time()))


@functools.lru_cache(maxsize=4)
def _stamp(second: int) -> str:
    """Salesforce's form of a moment, to the second: formatted once per second, not per record."""
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _datetime(name: str, value: Any) -> str:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise SfError(400, "JSON_PARSER_ERROR", f"Cannot deserialize instance of datetime from "
                      f"VALUE_STRING value {value} for field {name}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # 2026-11-22T10:00:00.000+00:00 -> Salesforce's 2026-11-22T10:00:00.000+0000
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "+0000"
