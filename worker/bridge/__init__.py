"""The bridge: Salesforce change events in through the Pub/Sub API, CloudEvents out to the exchange."""
