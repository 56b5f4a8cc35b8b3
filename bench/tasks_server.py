"""The tasks service under uvicorn, for ``bench/tasks_bench.py`` (settings from ATES_*).

    python bench/tasks_server.py [--no-messaging]

``--no-messaging`` runs the HTTP side only: events stay in the outbox (the benchmark
times the relay separately, after the shuffle).
"""

from __future__ import annotations

import sys

import uvicorn

from ates.config import Settings
from ates.platform.service import create_app
from ates.services.registry import spec


def main() -> None:
    settings = Settings()
    messaging = "--no-messaging" not in sys.argv[1:]
    app = create_app(spec("tasks"), settings, messaging=messaging)
    uvicorn.run(
        app, host=settings.host, port=settings.port("tasks"), log_level="warning", lifespan="on"
    )


if __name__ == "__main__":
    main()
