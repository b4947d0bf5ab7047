"""The append-only event log's live side: fan-out of committed events to subscribers."""
