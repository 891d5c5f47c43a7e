"""A Salesforce Pub/Sub API-compatible gRPC test server (eventbus.v1) fed by the test org."""
