"""Generated runctl.v1 stubs (scripts/generate.sh); do not edit."""
