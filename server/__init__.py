"""gRPC server: services, protobuf conversion, auth, limits, health, CLI wiring."""
