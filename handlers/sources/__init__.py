"""Sources: which CRM changes become which CloudEvents (``sources:`` in YAML)."""
