"""The HTTP/JSON face of runctl (the ASGI app served beside gRPC)."""
