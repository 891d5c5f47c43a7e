"""The shipped reports, report type and dashboard name only objects, fields and reports that exist."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from worker.crm.salesforce_records import REPORT_FIELDS

META = Path(__file__).parents[2] / "config" / "salesforce" / "force-app" / "main" / "default"
NS = {"m": "http://soap.sforce.com/2006/04/metadata"}
# Standard fields every custom object has, which the metadata never declares.
STANDARD = {"Name", "Owner", "OwnerId", "CreatedDate", "CreatedBy", "LastModifiedDate", "Id"}


def _fields(obj: str) -> set[str]:
    return {p.name.removesuffix(".field-meta.xml") for p in (META / "objects" / obj / "fields").iterdir()}


def _texts(path: Path, tag: str) -> list[str]:
    return [e.text or "" for e in ET.parse(path).getroot().iter(f"{{{NS['m']}}}{tag}")]


REPORT_TYPES = sorted((META / "reportTypes").glob("*.reportType-meta.xml"))
REPORTS = sorted((META / "reports").glob("*/*.report-meta.xml"))
DASHBOARDS = sorted((META / "dashboards").glob("*/*.dashboard-meta.xml"))


def test_reports_a_report_type_and_a_dashboard_are_shipped() -> None:
    assert REPORT_TYPES
    assert len(REPORTS) >= 3
    assert DASHBOARDS


@pytest.mark.parametrize("path", REPORT_TYPES, ids=lambda p: p.name)
def test_report_type_columns_are_fields_of_their_object(path: Path) -> None:
    root = ET.parse(path).getroot()
    base = root.findtext("m:baseObject", namespaces=NS)
    assert base is not None
    assert (META / "objects" / base).is_dir(), base
    for column in root.iter(f"{{{NS['m']}}}columns"):
        table, field = column.findtext("m:table", namespaces=NS), column.findtext("m:field", namespaces=NS)
        assert table == base
        assert field in _fields(base) | STANDARD, f"{path.name}: {table}.{field}"


@pytest.mark.parametrize("path", REPORTS, ids=lambda p: p.name)
def test_report_fields_are_columns_of_its_report_type(path: Path) -> None:
    report_type = ET.parse(path).getroot().findtext("m:reportType", namespaces=NS) or ""
    type_file = META / "reportTypes" / f"{report_type.removesuffix('__c')}.reportType-meta.xml"
    assert type_file.exists(), f"{path.name}: no report type {report_type}"
    base = ET.parse(type_file).getroot().findtext("m:baseObject", namespaces=NS)
    offered = set(_texts(type_file, "field"))
    used = _texts(path, "field") + _texts(path, "dateColumn")
    for ref in used:
        obj, _, field = ref.partition("$")
        assert obj == base, f"{path.name}: {ref}"
        assert field in offered, f"{path.name}: {ref} is not a column of {report_type}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_components_name_shipped_reports(path: Path) -> None:
    shipped = {f"{p.parent.name}/{p.name.removesuffix('.report-meta.xml')}" for p in REPORTS}
    for report in _texts(path, "report"):
        assert report in shipped, f"{path.name}: no report {report}"
        assert (META / "reports" / f"{report.split('/')[0]}.reportFolder-meta.xml").exists()


def test_every_field_the_worker_writes_for_reports_is_shipped_and_offered_to_reports() -> None:
    offered = {f for t in REPORT_TYPES for f in _texts(t, "field")}
    assert set(REPORT_FIELDS) <= _fields("Winback_Plan__c")
    assert set(REPORT_FIELDS) <= offered
