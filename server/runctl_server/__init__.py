"""runctl server: durable workflow execution with gRPC and HTTP control."""

from __future__ import annotations

__version__ = "0.1.0"
