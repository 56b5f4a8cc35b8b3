"""``ates status``: every service's ``GET /api/admin/status``, side by side.

Each service says what only it knows (its outbox, its dead letters, its consumer groups'
lag); the broker's streams are the same from every service, so they are shown once. A
service that cannot be reached or refuses says so in its row: the others still show.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

TIMEOUT = 10.0  # seconds per service: a status reads the broker, at most 2 s per figure


class NoCredentials(Exception):
    """No token given and no admin login to sign in with."""


def admin_token(auth_url: str, data_dir: Path, username: str | None, password: str | None) -> str:
    """An admin's access token: signed in as ``username`` with ``password``, or else as
    the demo admin ``ates up`` created in ``data_dir`` (its ``demo-logins.txt``)."""
    from ates.password_login import password_login
    from ates.simulate.client import read_logins

    if username is None or password is None:
        admins = [login for login in read_logins(data_dir).values() if login.role == "admin"]
        if not admins:
            raise NoCredentials(
                f"no admin login in {data_dir} (the demo logins of 'ates up'): give --token, "
                "or --username and --password of an admin"
            )
        username, password = admins[0].username, admins[0].password
    return str(password_login(auth_url, username, password)["access_token"])


def gather(urls: Mapping[str, str], token: str) -> dict[str, Any]:
    """``{"services": [...], "streams": [...]}``: each service's status (or why there is
    none: ``"status": "unreachable"`` or ``"error"`` with an ``"error"``), and the
    broker's streams as the first service that could read them saw them."""
    services: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    with httpx.Client(timeout=TIMEOUT) as http:
        for service, url in urls.items():
            try:
                answer = http.get(f"{url}/api/admin/status", headers=headers)
            except httpx.HTTPError as error:
                services.append(
                    {"service": service, "url": url, "status": "unreachable", "error": str(error)}
                )
                continue
            if answer.status_code != 200:
                services.append(
                    {
                        "service": service,
                        "url": url,
                        "status": "error",
                        "error": f"{answer.status_code}: {_detail(answer)}",
                    }
                )
                continue
            services.append({**answer.json(), "url": url})
    streams: list[dict[str, Any]] = []
    for found in services:
        if any(s["messages"] is not None for s in found.get("streams", [])):
            streams = found["streams"]
            break
    return {
        "services": [{k: v for k, v in s.items() if k != "streams"} for s in services],
        "streams": streams,
    }


def _detail(answer: httpx.Response) -> str:
    try:
        return str(answer.json()["detail"])
    except (ValueError, KeyError, TypeError):
        return answer.text[:200]


def all_ok(report: Mapping[str, Any]) -> bool:
    return all(s["status"] == "ok" for s in report["services"])


def render(report: Mapping[str, Any]) -> None:
    """Print the report for people: services, consumer groups and streams as plain
    aligned columns (never cut to the terminal's width), then what could not be read."""
    import typer

    from ates.clitools import print_rows

    def figure(value: Any) -> str:
        return "?" if value is None else f"{value:,}"

    read = [s for s in report["services"] if s["status"] == "ok"]
    print_rows(
        ("service", "health", "version", "broker", "outbox", "oldest unsent", "dead letters"),
        [
            (
                s["service"],
                s["status"],
                s["version"],
                s["broker"],
                figure(s["outbox"]["backlog"]),
                _age(s["outbox"]["oldest_unsent_age_seconds"]),
                figure(s["dead_letters"]["pending"]),
            )
            for s in read
        ],
    )
    typer.echo()
    print_rows(
        ("service", "consumer group", "domain", "applied", "lag"),
        [
            (s["service"], g["group"], g["domain"], figure(g["applied"]), figure(g["lag"]))
            for s in read
            for g in s["consumer_groups"]
        ],
    )
    typer.echo()
    print_rows(
        ("stream", "messages"),
        [(stream["domain"], figure(stream["messages"])) for stream in report["streams"]],
    )
    for s in report["services"]:
        if s["status"] != "ok":
            typer.echo(f"\n{s['service']}: {s['status']} at {s['url']}: {s['error']}")


def _age(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f} s"
