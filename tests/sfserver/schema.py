"""The test org's schema: standard objects by hand, custom ones read from config/salesforce."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace
from pathlib import Path

METADATA = Path(__file__).resolve().parents[2] / "config" / "salesforce" / "force-app" / "main" / "default"
_NS = {"m": "http://soap.sforce.com/2006/04/metadata"}


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # describe type: id, string, textarea, reference, picklist, boolean, datetime, ...
    length: int = 0
    createable: bool = True
    updateable: bool = True
    external_id: bool = False
    unique: bool = False
    custom: bool = False
    values: tuple[str, ...] = ()  # restricted picklist values
    reference_to: str = ""  # a custom lookup's or master-detail's parent object
    required: bool = False  # master-detail, or required in the metadata: always visible, must be set

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name, "type": self.type, "length": self.length, "custom": self.custom,
            "createable": self.createable, "updateable": self.updateable, "nillable": True,
            "externalId": self.external_id, "unique": self.unique, "idLookup": self.unique,
            "picklistValues": [{"value": v, "label": v, "active": True, "defaultValue": False}
                               for v in self.values],
        }


@dataclass(frozen=True)
class SObject:
    name: str
    prefix: str
    fields: dict[str, Field]
    createable: bool = True
    updateable: bool = True
    custom: bool = False
    required: tuple[tuple[str, ...], ...] = ()  # each group: one of these fields must be set
    unique_together: tuple[str, ...] = ()  # e.g. a contact is in a campaign at most once

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name, "label": self.name, "keyPrefix": self.prefix, "custom": self.custom,
            "createable": self.createable, "updateable": self.updateable, "queryable": True,
            "deletable": False, "fields": [f.describe() for f in self.fields.values()],
        }


def _system() -> list[Field]:
    return [Field("Id", "id", 18, createable=False, updateable=False),
            Field("CreatedById", "reference", 18, createable=False, updateable=False),
            Field("CreatedDate", "datetime", createable=False, updateable=False)]


def _standard() -> dict[str, SObject]:
    owner, what, who = (Field(n, "reference", 18) for n in ("OwnerId", "WhatId", "WhoId"))
    task = [
        Field("Subject", "string", 255), Field("Description", "textarea", 32000),
        Field("ActivityDate", "date"), Field("ReminderDateTime", "datetime"),
        Field("IsReminderSet", "boolean"), Field("IsClosed", "boolean", createable=False, updateable=False),
        Field("CompletedDateTime", "datetime", createable=False, updateable=False),
        Field("Priority", "picklist", 40, values=("High", "Normal", "Low")),
        Field("Status", "picklist", 40, values=("Not Started", "In Progress", "Completed",
                                                "Waiting on someone else", "Deferred")),
        owner, what, who,
    ]
    event = [
        Field("Subject", "string", 255), Field("Description", "textarea", 32000),
        Field("StartDateTime", "datetime"), Field("DurationInMinutes", "int"),
        # Derived from the start and the duration, as Salesforce does when only those are sent.
        Field("EndDateTime", "datetime", createable=False, updateable=False),
        Field("ShowAs", "picklist", 40, values=("Busy", "OutOfOffice", "Free")), owner, what, who,
    ]
    email = [
        Field("Subject", "string", 3000), Field("HtmlBody", "textarea", 131072),
        Field("TextBody", "textarea", 131072), Field("ToAddress", "string", 4000),
        Field("Status", "picklist", 40, values=("0", "1", "2", "3", "4", "5")),
        Field("IsPrivateDraft", "boolean"), Field("RelatedToId", "reference", 18),
    ]
    case = [
        Field("Subject", "string", 255), Field("Description", "textarea", 32000),
        Field("Type", "picklist", 40, values=("Complaint", "Question", "Problem", "Feature Request")),
        Field("Priority", "picklist", 40, values=("High", "Medium", "Low")),
        Field("Status", "picklist", 40, values=("New", "Working", "Escalated", "Closed")),
        Field("IsClosed", "boolean", createable=False, updateable=False),
        Field("Origin", "string", 40), Field("Reason", "string", 40),
        Field("AccountId", "reference", 18), Field("ContactId", "reference", 18), owner,
    ]
    member = [Field("CampaignId", "reference", 18), Field("ContactId", "reference", 18),
              Field("Status", "string", 40)]
    user = [Field("Username", "string", 80), Field("Name", "string", 121),
            Field("IsActive", "boolean"), Field("ManagerId", "reference", 18)]
    group = [Field("Name", "string", 40), Field("DeveloperName", "string", 80),
             Field("Type", "picklist", 40, values=("Queue", "Regular"))]
    # Which objects a queue takes (its Supported Objects): Salesforce's QueueSobject.
    queue_object = [Field("QueueId", "reference", 18),
                    Field("SobjectType", "picklist", 40, values=("Case", "Lead"))]
    account = [Field("Name", "string", 255), owner]
    contact = [Field("LastName", "string", 80), Field("AccountId", "reference", 18),
               Field("Email", "email", 80), owner]
    campaign = [Field("Name", "string", 80), Field("IsActive", "boolean"), owner]
    return {
        # The org's own records: the integration user reads them, never writes them.
        **{name: _object(name, prefix, fields, createable=False, updateable=False)
           for name, prefix, fields in (("User", "005", user), ("Group", "00G", group),
                                        ("Account", "001", account), ("Contact", "003", contact),
                                        ("Campaign", "701", campaign),
                                        ("QueueSobject", "03g", queue_object))},
        "Task": _object("Task", "00T", task),
        "Event": _object("Event", "00U", event, required=(("StartDateTime",), ("DurationInMinutes",))),
        "EmailMessage": _object("EmailMessage", "02s", email),
        "Case": _object("Case", "500", case),
        "CampaignMember": _object("CampaignMember", "00v", member, required=(
            ("CampaignId",), ("ContactId",)), unique_together=("CampaignId", "ContactId")),
    }


def _object(name: str, prefix: str, fields: list[Field], **kwargs: object) -> SObject:
    return SObject(name, prefix, {f.name: f for f in [*_system(), *fields]}, **kwargs)  # type: ignore[arg-type]


def _text(node: ET.Element, tag: str, default: str = "") -> str:
    found = node.find(f"m:{tag}", _NS)
    return default if found is None or found.text is None else found.text


def _custom_field(path: Path) -> Field:
    node = ET.parse(path).getroot()
    kind = _text(node, "type")
    types = {"Text": "string", "LongTextArea": "textarea", "Lookup": "reference",
             "Picklist": "picklist", "DateTime": "datetime", "Number": "double", "Checkbox": "boolean"}
    types["MasterDetail"] = "reference"
    values = tuple(v.text or "" for v in node.iterfind(".//m:value/m:fullName", _NS))
    return Field(
        name=_text(node, "fullName"), type=types[kind], length=int(_text(node, "length", "0")),
        external_id=_text(node, "externalId") == "true", unique=_text(node, "unique") == "true",
        custom=True, values=values, reference_to=_text(node, "referenceTo"),
        required=kind == "MasterDetail" or _text(node, "required") == "true",
    )


def _custom_objects(root: Path) -> dict[str, SObject]:
    objects: dict[str, SObject] = {}
    prefixes = iter(("a00", "a01", "a02", "a03"))
    for meta in sorted(root.glob("objects/*/*.object-meta.xml")):
        node = ET.parse(meta).getroot()
        name = meta.parent.name
        auto = node.find("m:nameField/m:type", _NS)
        name_field = Field("Name", "string", 80, createable=auto is None or auto.text != "AutoNumber",
                           updateable=auto is None or auto.text != "AutoNumber")
        # A detail of a master-detail relationship has no owner of its own: its master's is used.
        detail = _text(node, "sharingModel") == "ControlledByParent"
        owner = [] if detail else [Field("OwnerId", "reference", 18)]
        objects[name] = _object(name, next(prefixes), [name_field, *owner], custom=True)
    return objects


@dataclass
class Permissions:
    """What the permission set grants: object access, user permissions, editable fields."""

    objects: dict[str, set[str]] = field(default_factory=dict)  # object -> {"create", "edit"}
    user: set[str] = field(default_factory=set)
    fields: set[str] = field(default_factory=set)  # "Object.Field__c" editable
    read_only: set[str] = field(default_factory=set)  # readable, not editable (owners fill them)


def permission_set(path: Path) -> Permissions:
    node = ET.parse(path).getroot()
    granted = Permissions()
    for perm in node.iterfind("m:objectPermissions", _NS):
        flags = {n for n, tag in (("create", "allowCreate"), ("edit", "allowEdit"))
                 if _text(perm, tag) == "true"}
        granted.objects[_text(perm, "object")] = flags
    granted.user = {_text(p, "name") for p in node.iterfind("m:userPermissions", _NS)
                    if _text(p, "enabled") == "true"}
    for perm in node.iterfind("m:fieldPermissions", _NS):
        if _text(perm, "editable") != "true" and _text(perm, "readable") == "true":
            granted.read_only.add(_text(perm, "field"))
        if _text(perm, "editable") == "true":
            name = _text(perm, "field")
            # An activity field (objects/Activity/fields) is granted per object, Task.X and Event.X,
            # as a retrieved profile or permission set lists it; a grant on one is not read as both.
            granted.fields.add(name)
    return granted


def load_schema(root: Path = METADATA, hidden: frozenset[str] = frozenset(),
                missing: frozenset[str] = frozenset(),
                read_only: frozenset[str] = frozenset()) -> dict[str, SObject]:
    """The org as an integration user with the shipped permission set sees it.

    ``hidden`` names fields ("Task.Winback_Key__c") whose grant is taken away; ``missing`` names
    objects or fields never deployed; ``read_only`` names objects the user may not create or edit.
    """
    objects = {**_standard(), **_custom_objects(root)}
    for path in sorted(root.glob("objects/*/fields/*.field-meta.xml")):
        custom = _custom_field(path)
        owners = ("Task", "Event") if path.parts[-3] == "Activity" else (path.parts[-3],)
        for owner in owners:
            objects[owner].fields[custom.name] = custom
    for name, obj in objects.items():
        needed = tuple((f.name,) for f in obj.fields.values() if f.custom and f.required)
        if needed:
            objects[name] = replace(obj, required=(*obj.required, *needed))
    grants = permission_set(root / "permissionsets" / "Winback_Integration.permissionset-meta.xml")
    schema = {name: _apply(obj, grants, hidden, missing) for name, obj in objects.items()
              if name not in missing}
    for name in read_only:
        schema[name] = replace(schema[name], createable=False, updateable=False)
    return schema


def _apply(obj: SObject, grants: Permissions, hidden: frozenset[str],
           missing: frozenset[str]) -> SObject:
    fields = {}
    for name, f in obj.fields.items():
        full = f"{obj.name}.{name}"
        if full in grants.read_only and full not in missing | hidden:
            fields[name] = replace(f, createable=False, updateable=False)
            continue
        if full in missing or full in hidden or (f.custom and not f.required
                                                 and full not in grants.fields):
            continue  # a field without read access is absent from describe and from the API
        fields[name] = f
    access = _object_access(obj, grants)
    return replace(obj, fields=fields, createable="create" in access, updateable="edit" in access)


def _object_access(obj: SObject, grants: Permissions) -> set[str]:
    if obj.custom:
        return grants.objects.get(obj.name, set())
    if obj.name in ("Task", "Event"):
        return {"create", "edit"} if f"Edit{obj.name}" in grants.user else set()
    if obj.name == "Case":  # a standard object the permission set must grant, as in an org
        return grants.objects.get("Case", set())
    if obj.name == "CampaignMember":
        return {"create", "edit"} if "edit" in grants.objects.get("Campaign", set()) else set()
    if not obj.createable:  # users, queues, accounts...: read, never written by the worker
        return set()
    return {"create", "edit"}
