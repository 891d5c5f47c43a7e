"""CRM adapters behind one port: ``local`` (SQLite) and ``salesforce`` (simple-salesforce)."""
