"""runctl Python client."""
