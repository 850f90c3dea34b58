"""`python -m redrive_cli` is the `redrive` command."""

from redrive_cli.app import app

app()
