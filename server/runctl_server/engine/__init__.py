"""The scheduler and the workflow model: definitions, expressions, files; no gRPC, no HTTP."""
