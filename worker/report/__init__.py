"""Reporting: the method's figures and each plan's timeline, read from the CRM, for people and scripts."""
