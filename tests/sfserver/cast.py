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
# What tests/salesforce/changes.py writes about: a user, a contact, a survey campaign, and
# numbered accounts (001 + 12 digits + AAA), as many as the largest test uses.
ALICE, DANA, SURVEY = "0050000000ALICEAAA", "0030000000DANA1AAA", "701000000SURVEYAAA"
NUMBERED_ACCOUNTS = 1_100
# Queues: one that takes Cases (team work a rule sends with open_case), one that takes Leads only.
CASE_QUEUE, CASE_QUEUE_NAME = "00G000000CASESQAAA", "Winback_Escalations"
LEAD_QUEUE, LEAD_QUEUE_NAME = "00G000000LEADSQAAA", "Marketing_Leads"


def seed(org: Org) -> None:
    org.seed("User", Id=MANAGER, Username="manager@example.com.test", Name="Morgan Manager",
             IsActive=True)
    org.seed("User", Id=OWNER, Username="owner@example.com.test", Name="Olive Owner",
             IsActive=True, ManagerId=MANAGER)
    for account, name in ACCOUNTS.items():
        org.seed("Account", Id=account, Name=name, OwnerId=OWNER)
    org.seed("Contact", Id=CONTACT, LastName="Reyes", AccountId=WON, Email="dana@northwind.example")
    org.seed("User", Id=ALICE, Username="alice@example.com.test", Name="Alice", IsActive=True)
    org.seed("Contact", Id=DANA, LastName="Dana")
    org.seed("Campaign", Id=SURVEY, Name="Lapsed-customer survey", IsActive=True)
    for queue, name, takes in ((CASE_QUEUE, CASE_QUEUE_NAME, "Case"),
                               (LEAD_QUEUE, LEAD_QUEUE_NAME, "Lead")):
        org.seed("Group", Id=queue, Name=name.replace("_", " "), DeveloperName=name, Type="Queue")
        org.seed("QueueSobject", QueueId=queue, SobjectType=takes)
    for n in range(NUMBERED_ACCOUNTS):
        org.seed("Account", Id=f"001{n:012d}AAA", Name=f"Customer {n}", OwnerId=ALICE)
        org.seed("Contact", Id=f"003{n:012d}AAA", LastName=f"Contact {n}")
