"""Build the CRM adapter the settings name."""

from __future__ import annotations

from worker.crm.port import Crm
from worker.settings import Settings


def build_crm(settings: Settings) -> Crm:
    if settings.crm == "salesforce":
        from worker.crm.salesforce import SalesforceCrm  # only this path imports simple_salesforce

        return SalesforceCrm.from_settings(settings)
    from worker.crm.local import LocalCrm

    return LocalCrm(settings.local_crm_path)
