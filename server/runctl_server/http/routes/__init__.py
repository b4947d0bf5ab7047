"""The HTTP shim's routes, one module per compatibility API (and one for the routes they imply)."""
