"""Generated protobuf and gRPC stubs for satchel.v1 (see `make proto`)."""
