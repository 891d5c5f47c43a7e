"""Generated gRPC modules of the Salesforce Pub/Sub API (see pubsub_api.proto)."""
