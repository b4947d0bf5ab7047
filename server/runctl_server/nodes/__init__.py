"""Node types: one module each, behind the small interface in base.py, registered by name."""
