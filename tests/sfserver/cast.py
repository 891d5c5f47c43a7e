"""The people and accounts the shared stories are about, as records of the test org.

The embedded CRM takes any id; the test org, like Salesforce, only ids of records it has. So the
suites that run on every adapter name these, and ``seed`` puts them in a fresh org.
"""

from __future__ import annotations

from tests.sfserver.org import Org

OWNER = "0050000000OWNERAAA"  # owns every story account
MANAGER = "005000000MANAGERAA"  # the owner's manager: escalations go to them
CONTACT = "0030000000DANA0AAA"
WON = "001000000000WONAAA"
LOST = "00100000000LOSTAAA"
DECLINED = "001000000DECLNDAAA"
ACCOUNTS = {WON: "Northwind", LOST: "Tailspin", DECLINED: "Fabrikam"}


def seed(org: Org) -> None:
    org.seed("User", Id=MANAGER, Username="manager@example.com.test", Name="Morgan Manager",
             IsActive=True)
    org.seed("User", Id=OWNER, Username="owner@example.com.test", Name="Olive Owner",
             IsActive=True, ManagerId=MANAGER)
    for account, name in ACCOUNTS.items():
        org.seed("Account", Id=account, Name=name, OwnerId=OWNER)
    org.seed("Contact", Id=CONTACT, LastName="Reyes", AccountId=WON, Email="dana@northwind.example")
