"""The winback worker's infrastructure: settings, AMQP, CRM adapters, CLI, metrics and logging."""
