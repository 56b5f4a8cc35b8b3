"""The running system's public HTTP API, signed in as the demo people."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx

from ates.config import Settings
from ates.password_login import LoginFailed, password_login
from ates.simulate.plan import Login, SimulationError

Say = Callable[[str], None]

LOGINS_FILE = "demo-logins.txt"
SIMULATED_LOGINS_FILE = "simulated-logins.txt"
TOKEN_MARGIN_SECONDS = 30  # sign in again when a token has less than this left
POLL_SECONDS = 0.25


def read_logins(data_dir: Path) -> dict[str, Login]:
    """The demo people ``ates up`` created, and any worker an earlier simulation made."""
    found: dict[str, Login] = {}
    for name in (LOGINS_FILE, SIMULATED_LOGINS_FILE):
        path = data_dir / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) == 3:
                found[parts[0]] = Login(*parts)
    return found


class Api:
    """The running system's public HTTP API, called as one person or another."""

    def __init__(self, settings: Settings, logins: dict[str, Login], http: httpx.Client) -> None:
        self.settings = settings
        self.logins = logins
        self.http = http
        self._tokens: dict[str, tuple[str, float]] = {}

    def token(self, username: str) -> str:
        cached = self._tokens.get(username)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        login = self.logins[username]
        try:
            answer = password_login(self.settings.public_url("auth"), username, login.password)
        except LoginFailed as error:
            raise SimulationError(f"cannot sign in as {username}: {error}") from error
        lifetime = float(answer.get("expires_in") or 300)
        expires = time.monotonic() + max(lifetime - TOKEN_MARGIN_SECONDS, 1)
        self._tokens[username] = (str(answer["access_token"]), expires)
        return self._tokens[username][0]

    def call(
        self,
        username: str,
        method: str,
        service: str,
        path: str,
        *,
        ok: Iterable[int] = (),
        **kw: Any,
    ) -> httpx.Response:
        """Send one request as ``username``; any answer but 2xx (or one of ``ok``) stops
        the simulation with the service's own explanation."""
        url = self.settings.public_url(service) + path
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self.token(username)}"}
            try:
                response = self.http.request(method, url, headers=headers, **kw)
            except httpx.HTTPError as error:
                raise SimulationError(f"{service} at {url} cannot be reached: {error}") from error
            if response.status_code == 401 and attempt == 1:
                self._tokens.pop(username, None)  # expired early (clock skew): once more
                continue
            break
        if response.is_success or response.status_code in set(ok):
            return response
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise SimulationError(
            f"{method} {url} as {username}: HTTP {response.status_code}: {detail}"
        )

    def json(self, username: str, method: str, service: str, path: str, **kw: Any) -> Any:
        return self.call(username, method, service, path, **kw).json()
