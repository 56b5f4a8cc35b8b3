"""What every service's HTTP side shares: health, metrics, errors, sessions, templates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from ates.platform import sessions
from ates.platform.api_errors import describe_validation_error, document_errors, jsonable_errors
from ates.platform.headers import SecurityHeaders, origin
from ates.platform.limits import JSON_BODY_MAX, DeclaredJsonLimit, too_large
from ates.platform.middleware import RequestMetrics, SameOriginForms
from ates.platform.money import format_cents

PLATFORM_DIR = Path(__file__).parent
DASHBOARD_SERVICES = ("auth", "tasks", "billing", "analytics")
UNREADABLE_BODY = "There was an error parsing the body"  # FastAPI's words


def install_common(app: FastAPI, runtime: Any) -> None:
    settings = runtime.settings
    service = runtime.spec.name

    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie=f"ates_{service}_session",
        max_age=sessions.IDLE_SECONDS,  # idle timeout; the absolute one is on the server
        same_site="lax",
        https_only=settings.environment == "production",
    )

    app.add_middleware(SameOriginForms, trusted_origins={origin(settings.public_url(service))})
    app.add_middleware(RequestMetrics, service=service)

    @app.exception_handler(413)
    async def _too_large(request: Request, error: Exception) -> JSONResponse:
        # FastAPI's cap (each router's max_body_size, see create_app) refused the body
        limit = request.scope.get("starlette.max_body_size", JSON_BODY_MAX)
        return JSONResponse(status_code=413, content={"detail": too_large(limit)})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code == 400 and error.detail == UNREADABLE_BODY:
            # FastAPI's answer to a JSON body that is not even text (invalid UTF-8): an
            # invalid body like any other, named as such (DESIGN §4: 422)
            return JSONResponse(
                status_code=422, content={"detail": "body: not valid JSON (not UTF-8 text)"}
            )
        return await http_exception_handler(request, error)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            status_code=422,
            content={"detail": describe_validation_error(error), "errors": jsonable_errors(error)},
        )

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, Any]:
        return {
            "service": service,
            "status": "ok",
            "broker": "connected" if runtime.broker_ready.is_set() else "connecting",
        }

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)

    from ates.platform.pages import install_page_errors

    install_page_errors(app)
    document_errors(app)
    app.mount("/static", StaticFiles(directory=PLATFORM_DIR / "static"), name="static")
    app.state.templates = make_templates(runtime)
    app.add_middleware(DeclaredJsonLimit, limit=JSON_BODY_MAX)
    # added last, so outermost: every response, refusals included, gets the headers
    app.add_middleware(
        SecurityHeaders,
        service_origins=[origin(settings.public_url(s)) for s in DASHBOARD_SERVICES],
    )


def make_templates(runtime: Any) -> Jinja2Templates:
    loaders = []
    if runtime.spec.templates is not None:
        loaders.append(FileSystemLoader(runtime.spec.templates))
    loaders.append(FileSystemLoader(PLATFORM_DIR / "templates"))
    env = Environment(loader=ChoiceLoader(loaders), autoescape=select_autoescape())
    env.filters["money"] = format_cents
    settings = runtime.settings
    env.globals["service"] = runtime.spec
    env.globals["links"] = {
        name: settings.public_url(name) for name in ("auth", "tasks", "billing", "analytics")
    }
    env.globals["timezone"] = settings.timezone
    return Jinja2Templates(env=env)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    flashes = request.session.pop("flash", []) if "session" in request.scope else []
    return templates.TemplateResponse(
        request, template, {"flashes": flashes, **context}, status_code=status_code
    )


def flash(request: Request, message: str, category: str = "info") -> None:
    # Assign, not append: the session only notices a changed key, not a mutated list.
    pending = request.session.get("flash", [])
    request.session["flash"] = [*pending, {"message": message, "category": category}]
