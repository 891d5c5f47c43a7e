"""The shipped metadata deploys: the permission rules Salesforce enforces at deploy time, and the
tab and list views referring only to what exists."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.sfserver.schema import METADATA

NS = {"m": "http://soap.sforce.com/2006/04/metadata"}
PERMISSION_SETS = sorted((METADATA / "permissionsets").glob("*.permissionset-meta.xml"))
# Each object permission and what Salesforce requires with it (ObjectPermissions reference).
NEEDS = {
    "allowCreate": ("allowRead",), "allowEdit": ("allowRead",),
    "allowDelete": ("allowRead", "allowEdit"), "viewAllRecords": ("allowRead",),
    "modifyAllRecords": ("allowRead", "allowEdit", "allowDelete", "viewAllRecords"),
}


def _flag(node: ET.Element, tag: str) -> bool:
    return node.findtext(f"m:{tag}", default="false", namespaces=NS) == "true"


def _field_file(name: str) -> Path:
    sobject, field = name.split(".")
    folder = "Activity" if sobject in ("Task", "Event") else sobject
    return METADATA / "objects" / folder / "fields" / f"{field}.field-meta.xml"


def object_problems(path: Path) -> list[str]:
    found = []
    for perm in ET.parse(path).getroot().iterfind("m:objectPermissions", NS):
        sobject = perm.findtext("m:object", namespaces=NS)
        for flag, needed in NEEDS.items():
            missing = [n for n in needed if _flag(perm, flag) and not _flag(perm, n)]
            if missing:
                found.append(f"{sobject}: {flag} needs {', '.join(missing)}")
    return found


def field_problems(path: Path) -> list[str]:
    found = []
    for perm in ET.parse(path).getroot().iterfind("m:fieldPermissions", NS):
        name = perm.findtext("m:field", default="", namespaces=NS)
        source = _field_file(name)
        if not source.is_file():
            found.append(f"{name}: no such field in the metadata")
        elif "<required>true</required>" in source.read_text():
            found.append(f"{name}: a required field takes no field permissions")
        elif "<type>MasterDetail</type>" in source.read_text():
            found.append(f"{name}: a master-detail field takes no field permissions")
        if _flag(perm, "editable") and not _flag(perm, "readable"):
            found.append(f"{name}: editable needs readable")
    return found


@pytest.mark.parametrize("path", PERMISSION_SETS, ids=lambda p: p.name.split(".")[0])
def test_each_permission_set_keeps_salesforces_deploy_rules(path: Path) -> None:
    assert object_problems(path) == []
    assert field_problems(path) == []


def test_the_rules_check_finds_what_salesforce_refuses(tmp_path: Path) -> None:
    # The same checks on a permission set Salesforce would refuse, so they can fail.
    bad = tmp_path / "Bad.permissionset-meta.xml"
    bad.write_text(f"""<PermissionSet xmlns="{NS['m']}">
      <fieldPermissions><editable>true</editable><field>Winback_Plan__c.Nope__c</field>
        <readable>false</readable></fieldPermissions>
      <fieldPermissions><editable>true</editable><field>Winback_Suppression__c.Plan__c</field>
        <readable>true</readable></fieldPermissions>
      <objectPermissions><allowCreate>true</allowCreate><allowDelete>false</allowDelete>
        <allowEdit>true</allowEdit><allowRead>true</allowRead><modifyAllRecords>true</modifyAllRecords>
        <object>Winback_Plan__c</object><viewAllRecords>true</viewAllRecords></objectPermissions>
    </PermissionSet>""")
    assert object_problems(bad) == ["Winback_Plan__c: modifyAllRecords needs allowDelete"]
    assert field_problems(bad) == ["Winback_Plan__c.Nope__c: no such field in the metadata",
                                   "Winback_Plan__c.Nope__c: editable needs readable",
                                   "Winback_Suppression__c.Plan__c: a master-detail field takes no "
                                   "field permissions"]


def test_the_viewer_reads_every_plan_report_field_and_suppression_and_changes_nothing() -> None:
    root = ET.parse(METADATA / "permissionsets" / "Winback_Plan_Viewer.permissionset-meta.xml").getroot()
    objects = {p.findtext("m:object", namespaces=NS): [
        f for f in ("allowRead", "allowCreate", "allowEdit", "allowDelete") if _flag(p, f)]
        for p in root.iterfind("m:objectPermissions", NS)}
    assert objects == {"Winback_Plan__c": ["allowRead"], "Winback_Suppression__c": ["allowRead"]}
    fields = {p.findtext("m:field", namespaces=NS): _flag(p, "editable")
              for p in root.iterfind("m:fieldPermissions", NS)}
    shipped = {f"{obj}.{p.name.split('.')[0]}" for obj in objects
               for p in (METADATA / "objects" / obj / "fields").glob("*.field-meta.xml")}
    # The worker's state stays hidden; a master-detail field is always visible, never granted.
    assert set(fields) == shipped - {"Winback_Plan__c.State_Json__c", "Winback_Suppression__c.Plan__c"}
    assert not any(fields.values())


def test_the_tab_and_list_views_name_only_what_exists() -> None:
    assert (METADATA / "tabs" / "Winback_Plan__c.tab-meta.xml").is_file()
    fields = {p.name.split(".")[0]
              for p in (METADATA / "objects" / "Winback_Plan__c" / "fields").glob("*.field-meta.xml")}
    views = sorted((METADATA / "objects" / "Winback_Plan__c" / "listViews").glob("*.listView-meta.xml"))
    assert views
    for view in views:
        root = ET.parse(view).getroot()
        named = [c.text for c in root.iterfind("m:columns", NS)]
        named += [f.findtext("m:field", namespaces=NS) for f in root.iterfind("m:filters", NS)]
        assert [n for n in named if n != "NAME" and n not in fields] == [], view.name
