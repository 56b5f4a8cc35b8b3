"""What a service is (``ServiceSpec``) and what one process of it holds while it runs
(``Runtime``): the types every part of the platform that serves a service is handed.

Built by :func:`build_runtime`, started by ``ates.platform.service`` (which imports the
HTTP side too); nothing here connects at import time.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from fastapi import APIRouter

from ates.config import Settings
from ates.platform import redaction
from ates.platform.broker import Broker
from ates.platform.consumer import EventConsumer, Handler
from ates.platform.db import Database
from ates.platform.events import Registry, default_registry
from ates.platform.security import RemoteJwks, TokenVerifier
from ates.platform.standing import StandingOf
from ates.platform.tracing import Tracing
from ates.platform.uow import UnitOfWork

T = TypeVar("T")

BackgroundJob = Callable[["Runtime"], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    title: str
    consumes: Mapping[str, Handler] = field(default_factory=dict)
    # the event domains whose events this service produces (the event catalog says so)
    produces: Sequence[str] = ()
    routers: Sequence[APIRouter] = ()
    background: Sequence[BackgroundJob] = ()
    templates: Path | None = None
    # called once in the lifespan after the database is ready (e.g. register clients)
    on_startup: Sequence[BackgroundJob] = ()
    # A read model (state rebuilt from events only) sets this: it deletes the projections
    # in the rebuild's transaction. Such a service consumes in generations that
    # `ates replay` can rebuild from the broker's log (ates.platform.rebuild).
    read_model_reset: Callable[[UnitOfWork], Awaitable[None]] | None = None
    # A service with pages that keeps a copy of people says here what its copy knows of
    # someone: the pages then honour a role change or deactivation at once (sessions).
    standing: StandingOf | None = None
    # Pages sign people in through auth (OAuth authorization code, ``ates.platform.login``);
    # auth, the provider itself, sets this to False: its own pages sign people in locally.
    oauth_login: bool = True

    def consumer_group(self, generation: int = 1) -> str:
        return self.name if generation == 1 else f"{self.name}-g{generation}"


class Slot(Generic[T]):
    """The key of an object a service builds when it starts and keeps in its runtime
    (auth's OAuth provider): ``runtime.slots[KEY] = value`` takes and
    ``runtime.slots.get(KEY)`` gives back a ``T``, so the platform need not know the
    service's types and the service reads them typed (as aiohttp's ``AppKey``)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Slot({self.name!r})"


class Slots:
    def __init__(self) -> None:
        self._values: dict[Slot[Any], Any] = {}

    def __setitem__(self, key: Slot[T], value: T) -> None:
        self._values[key] = value

    def get(self, key: Slot[T]) -> T | None:
        value: T | None = self._values.get(key)
        return value


@dataclass
class Runtime:
    """Everything a request or a job of one service process needs."""

    settings: Settings
    spec: ServiceSpec
    db: Database
    registry: Registry
    verifier: TokenVerifier
    tracing: Tracing = field(default_factory=Tracing.off)
    broker: Broker | None = None
    broker_ready: asyncio.Event = field(default_factory=asyncio.Event)
    slots: Slots = field(default_factory=Slots)
    # when /metrics last read the gauges (ates.platform.gauges), monotonic seconds
    gauges_sampled_at: float = -math.inf

    @property
    def service(self) -> str:
        return self.spec.name

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.db, producer=self.spec.name, registry=self.registry)

    def consumer(
        self, inbox_name: str | None = None, handlers: Mapping[str, Handler] | None = None
    ) -> EventConsumer:
        return EventConsumer(
            self.spec.name,
            self.db,
            self.spec.consumes if handlers is None else handlers,
            self.registry,
            max_deliveries=self.settings.max_deliveries,
            backoff_seconds=self.settings.retry_backoff_seconds,
            inbox_name=inbox_name,
            tracing=self.tracing,
        )


def build_runtime(
    spec: ServiceSpec,
    settings: Settings,
    *,
    verifier: TokenVerifier | None = None,
    tracing: Tracing | None = None,
) -> Runtime:
    registry = default_registry()
    redaction.remember(settings.secret_key)
    if verifier is None:
        jwks = RemoteJwks(f"{settings.public_url('auth')}/.well-known/jwks.json")
        verifier = TokenVerifier(jwks, issuer=settings.issuer)
    tracing = tracing or Tracing.from_mode(spec.name, settings.otel)
    db = Database(settings.database_url(spec.name))
    tracing.instrument_engine(db.engine)
    return Runtime(
        settings=settings,
        spec=spec,
        db=db,
        registry=registry,
        verifier=verifier,
        tracing=tracing,
    )


def domains_consumed(spec: ServiceSpec, registry: Registry) -> list[str]:
    """The domains of the events the service handles, sorted (its consumers take every
    message of each: see ``EventConsumer``)."""
    return sorted({registry.domain_of(name) for name in spec.consumes})
