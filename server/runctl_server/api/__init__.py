"""gRPC servicers: validate, call the engine, convert between proto and domain."""
