"""The shipped reports, report types and dashboard name only objects, fields and reports that exist.

A report names its columns ``table$field`` (``Winback_Plan__c$Stage__c``, or for a joined child
``Winback_Plan__c.Suppressed_Actions__r$Reason_Code__c``) and its summary formulas
``table.field:SUM``; a report type offers columns per table, the base object and each child
relationship it joins. Every name is checked against the shipped object and field metadata.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from worker.crm.salesforce_records import REPORT_FIELDS, ROLLUP_FIELDS, SUPPRESSION

META = Path(__file__).parents[2] / "config" / "salesforce" / "force-app" / "main" / "default"
NS = {"m": "http://soap.sforce.com/2006/04/metadata"}
# Standard fields every custom object has, which the metadata never declares.
STANDARD = {"Name", "Owner", "OwnerId", "CreatedDate", "CreatedBy", "LastModifiedDate", "Id"}
_FORMULA_REF = re.compile(r"([A-Za-z_][\w.]*)\.(\w+):(?:SUM|AVG|MIN|MAX)")


def _fields(obj: str) -> set[str]:
    return {p.name.removesuffix(".field-meta.xml") for p in (META / "objects" / obj / "fields").iterdir()}


def _texts(path: Path, tag: str) -> list[str]:
    return [e.text or "" for e in ET.parse(path).getroot().iter(f"{{{NS['m']}}}{tag}")]


def _child_object(parent: str, relationship: str) -> str | None:
    """The object whose master-detail or lookup to ``parent`` is named ``relationship`` (…__r)."""
    for path in (META / "objects").glob("*/fields/*.field-meta.xml"):
        root = ET.parse(path).getroot()
        if (root.findtext("m:referenceTo", namespaces=NS) == parent
                and f"{root.findtext('m:relationshipName', namespaces=NS)}__r" == relationship):
            return path.parts[-3]
    return None


def _tables(type_file: Path) -> dict[str, str]:
    """Each table a report type offers (``Base``, ``Base.Child__r``...) and the object it is."""
    root = ET.parse(type_file).getroot()
    base = root.findtext("m:baseObject", namespaces=NS) or ""
    tables, path, obj = {base: base}, base, base
    join = root.find("m:join", NS)
    while join is not None:
        relationship = join.findtext("m:relationship", namespaces=NS) or ""
        child = _child_object(obj, relationship)
        assert child is not None, f"{type_file.name}: {obj} has no child relationship {relationship}"
        path, obj = f"{path}.{relationship}", child
        tables[path] = obj
        join = join.find("m:join", NS)
    return tables


def _offered(type_file: Path) -> set[tuple[str, str]]:
    root = ET.parse(type_file).getroot()
    return {(c.findtext("m:table", namespaces=NS) or "", c.findtext("m:field", namespaces=NS) or "")
            for c in root.iter(f"{{{NS['m']}}}columns")}


REPORT_TYPES = sorted((META / "reportTypes").glob("*.reportType-meta.xml"))
REPORTS = sorted((META / "reports").glob("*/*.report-meta.xml"))
DASHBOARDS = sorted((META / "dashboards").glob("*/*.dashboard-meta.xml"))


def _report_type_file(report: Path) -> Path:
    name = ET.parse(report).getroot().findtext("m:reportType", namespaces=NS) or ""
    return META / "reportTypes" / f"{name.removesuffix('__c')}.reportType-meta.xml"


def references(report: Path) -> list[tuple[str, str]]:
    """Every (table, field) ``report`` names: columns, groupings, filters, dates, formulas."""
    refs = [tuple(ref.partition("$")[::2]) for tag in ("field", "dateColumn", "column")
            for ref in _texts(report, tag)]
    for formula in _texts(report, "calculatedFormula"):
        refs += _FORMULA_REF.findall(formula)
    return [(table, field) for table, field in refs]


def test_reports_report_types_and_a_dashboard_are_shipped() -> None:
    assert len(REPORT_TYPES) >= 2
    assert len(REPORTS) >= 6
    assert DASHBOARDS


@pytest.mark.parametrize("path", REPORT_TYPES, ids=lambda p: p.name)
def test_report_type_columns_are_fields_of_their_tables(path: Path) -> None:
    tables = _tables(path)
    assert all((META / "objects" / obj).is_dir() for obj in tables.values()), tables
    for table, field in _offered(path):
        assert table in tables, f"{path.name}: {table} is neither the base object nor a join"
        assert field in _fields(tables[table]) | STANDARD, f"{path.name}: {table}.{field}"


@pytest.mark.parametrize("path", REPORTS, ids=lambda p: p.name)
def test_report_fields_are_columns_of_its_report_type(path: Path) -> None:
    type_file = _report_type_file(path)
    assert type_file.exists(), f"{path.name}: no report type {type_file.name}"
    offered = _offered(type_file)
    refs = references(path)
    assert refs
    for ref in refs:
        assert ref in offered, f"{path.name}: {ref} is not a column of {type_file.name}"


def test_the_check_finds_a_formula_or_child_column_that_does_not_exist(tmp_path: Path) -> None:
    bad = tmp_path / "Bad.report-meta.xml"
    bad.write_text(f"""<Report xmlns="{NS['m']}"><aggregates>
      <calculatedFormula>Winback_Plan__c.Nope__c:SUM / Winback_Plan__c.Acks_Late__c:SUM</calculatedFormula>
      </aggregates><columns><field>Winback_Plan__c.Suppressed_Actions__r$Stage__c</field></columns>
      <reportType>Winback_Plans_With_Suppressions__c</reportType></Report>""")
    offered = _offered(META / "reportTypes" / "Winback_Plans_With_Suppressions.reportType-meta.xml")
    assert [r for r in references(bad) if r not in offered] == [
        ("Winback_Plan__c.Suppressed_Actions__r", "Stage__c"), ("Winback_Plan__c", "Nope__c"),
        ("Winback_Plan__c", "Acks_Late__c")]  # a plan field, but not offered by this report type


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_components_name_shipped_reports(path: Path) -> None:
    shipped = {f"{p.parent.name}/{p.name.removesuffix('.report-meta.xml')}" for p in REPORTS}
    for report in _texts(path, "report"):
        assert report in shipped, f"{path.name}: no report {report}"
        assert (META / "reports" / f"{report.split('/')[0]}.reportFolder-meta.xml").exists()


def test_the_dashboard_shows_sla_attainment_and_suppressions_by_reason() -> None:
    (dashboard,) = DASHBOARDS
    assert {"Winback/Winback_SLA_Attainment", "Winback/Winback_Suppressions_By_Reason"} <= set(
        _texts(dashboard, "report"))


def test_sla_attainment_is_in_sla_over_decided_and_suppressions_group_by_reason_then_rule() -> None:
    sla = META / "reports" / "Winback" / "Winback_SLA_Attainment.report-meta.xml"
    (formula,) = _texts(sla, "calculatedFormula")
    met, late = "Winback_Plan__c.Acks_In_SLA__c:SUM", "Winback_Plan__c.Acks_Late__c:SUM"
    assert f"{met} / ({met} + {late})" in formula
    by_reason = META / "reports" / "Winback" / "Winback_Suppressions_By_Reason.report-meta.xml"
    groupings = [g.findtext("m:field", namespaces=NS)
                 for g in ET.parse(by_reason).getroot().iterfind("m:groupingsDown", NS)]
    assert groupings == ["Winback_Plan__c.Suppressed_Actions__r$Reason_Code__c",
                         "Winback_Plan__c.Suppressed_Actions__r$Rule_Id__c"]


def test_every_field_the_worker_writes_for_reports_is_shipped_and_offered_to_reports() -> None:
    offered = {field for t in REPORT_TYPES for _, field in _offered(t)}
    plan_fields = {*REPORT_FIELDS, *ROLLUP_FIELDS}
    assert plan_fields <= _fields("Winback_Plan__c")
    assert plan_fields <= offered
    written = set(_fields(SUPPRESSION)) - {"Plan__c", "Winback_Key__c"}
    assert written <= {field for table, field in _offered(
        META / "reportTypes" / "Winback_Plans_With_Suppressions.reportType-meta.xml")
        if table.endswith("Suppressed_Actions__r")}
