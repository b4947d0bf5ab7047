"""`python -m runctl.cli ...` runs the command line."""

from runctl.cli import app

app()
