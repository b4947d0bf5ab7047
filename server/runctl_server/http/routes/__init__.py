"""The HTTP shim's routes, one module per seed document (and one for the routes DESIGN.md implies)."""
