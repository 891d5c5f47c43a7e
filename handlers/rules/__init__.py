"""Admin rules: the model of ``rules.yaml``, condition evaluation, parsing with line numbers."""
