"""What operators see of a running server: metrics, traces and structured logs.

A leaf package like nodes/: every layer may record into it, it imports none of them.
"""
