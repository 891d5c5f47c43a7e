"""The win-back domain: events, the plan, rules, templates and one pure handler per event type."""
