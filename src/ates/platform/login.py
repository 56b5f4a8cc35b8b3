"""Signing in to a service's pages through auth (OAuth 2 authorization code + PKCE).

``install_login`` adds ``/login``, ``/oauth/callback`` and ``/logout`` to a service's app.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI


def install_login(app: FastAPI, runtime: Any) -> None:
    """Not built yet (issue 4): pages redirect to /login, which does not exist so far."""
