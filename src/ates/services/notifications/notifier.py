"""The notifier port: where messages go. ``StdoutNotifier`` prints one line per message
(nothing is really sent in aTES); ``RecordingNotifier`` keeps them for tests."""

from __future__ import annotations

import sys
from typing import Protocol

from ates.services.notifications.domain import Message


class Notifier(Protocol):
    async def send(self, message: Message) -> None: ...


class StdoutNotifier:
    async def send(self, message: Message) -> None:
        # sys.stdout looked up per call, so a redirected stdout (tests, supervisors) works
        print(message.line(), file=sys.stdout, flush=True)


class RecordingNotifier:
    def __init__(self) -> None:
        self.sent: list[Message] = []

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    def lines(self) -> list[str]:
        return [message.line() for message in self.sent]
