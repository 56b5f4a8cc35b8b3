"""The billing service's words of the `ates` command."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Mount this service's commands on the main `ates` app."""
