"""What every service's HTTP side shares: health, metrics, errors, sessions, templates."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from ates.platform import sessions
from ates.platform.api_errors import describe_validation_error, document_errors, jsonable_errors
from ates.platform.apidocs import install_api_docs
from ates.platform.dates import DAY_FIELD_PATTERN, format_clock, format_day, format_moment
from ates.platform.gauges import sample
from ates.platform.headers import SecurityHeaders, origin
from ates.platform.limits import JSON_BODY_MAX, DeclaredJsonLimit, too_large
from ates.platform.middleware import RequestMetrics, SameOriginForms
from ates.platform.money import format_cents
from ates.platform.pages import (
    SESSION_KEY,
    LoginRequired,
    PageForbidden,
    principal_from_session,
)
from ates.platform.runtime import Runtime

PLATFORM_DIR = Path(__file__).parent
DASHBOARD_SERVICES = ("auth", "tasks", "billing", "analytics", "notifications")
UNREADABLE_BODY = "There was an error parsing the body"  # FastAPI's words
ERROR_TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "Not found",
    405: "Not possible here",
    413: "Too large",
    422: "Not understood",
    500: "Something went wrong",
}


def wants_page(request: Request) -> bool:
    """Whether an error should be answered as a page: a browser asked for something
    outside the JSON API. API clients keep getting ``{"detail": …}`` (DESIGN §4)."""
    if request.url.path.startswith("/api/"):
        return False
    return "text/html" in request.headers.get("accept", "")


def error_page(request: Request, status_code: int, message: str) -> HTMLResponse:
    """A styled page for an error a browser met, with the header of the person signed in
    (if any) so they can carry on from it."""
    user = None
    if "session" in request.scope:
        user = principal_from_session(request.session.get(SESSION_KEY))
    return render(
        request,
        "error.html",
        status_code=status_code,
        user=user,
        status=status_code,
        heading=ERROR_TITLES.get(status_code, "Error"),
        message=message,
    )


def install_common(app: FastAPI, runtime: Runtime) -> None:
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
        if wants_page(request):
            message = (
                "There is no such page here. It may have moved, or the link may be mistyped."
                if error.status_code == 404
                else str(error.detail)
            )
            return error_page(request, error.status_code, message)
        return await http_exception_handler(request, error)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> Response:
        detail = describe_validation_error(error)
        if wants_page(request):
            return error_page(request, 422, f"This address asks for something odd: {detail}.")
        return JSONResponse(
            status_code=422, content={"detail": detail, "errors": jsonable_errors(error)}
        )

    @app.exception_handler(Exception)
    async def _broken(request: Request, error: Exception) -> Response:
        # Starlette's outermost middleware calls this, answers, then raises the error
        # again for the server to log with its traceback: nothing is swallowed.
        if wants_page(request):
            return error_page(
                request,
                500,
                "The page could not be shown because of an error on our side. It has been "
                "logged; please try again in a moment.",
            )
        return JSONResponse(status_code=500, content={"detail": "internal server error"})

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, Any]:
        return {
            "service": service,
            "status": "ok",
            "broker": "connected" if runtime.broker_ready.is_set() else "connecting",
        }

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> PlainTextResponse:
        await sample(runtime)  # backlog, dead letters, lag: read now, not on the hot path
        return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)

    install_page_errors(app)
    document_errors(app)
    app.mount("/static", StaticFiles(directory=PLATFORM_DIR / "static"), name="static")
    install_api_docs(app)
    app.state.templates = make_templates(runtime)
    app.add_middleware(DeclaredJsonLimit, limit=JSON_BODY_MAX)
    # added last, so outermost: every response, refusals included, gets the headers
    app.add_middleware(
        SecurityHeaders,
        service_origins=[origin(settings.public_url(s)) for s in DASHBOARD_SERVICES],
    )


def install_page_errors(app: FastAPI) -> None:
    """A visitor who is not signed in goes to sign in; one whose role does not fit the
    page is told so (``ates.platform.pages``)."""

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, error: LoginRequired) -> RedirectResponse:
        return RedirectResponse(f"/login?next={quote(error.next_url, safe='')}", status_code=303)

    @app.exception_handler(PageForbidden)
    async def _forbidden(request: Request, error: PageForbidden) -> Any:
        user = error.user or principal_from_session(request.session.get(SESSION_KEY))
        return render(request, "forbidden.html", status_code=403, user=user, message=error.message)


def make_templates(runtime: Runtime) -> Jinja2Templates:
    loaders = []
    if runtime.spec.templates is not None:
        loaders.append(FileSystemLoader(runtime.spec.templates))
    loaders.append(FileSystemLoader(PLATFORM_DIR / "templates"))
    env = Environment(loader=ChoiceLoader(loaders), autoescape=select_autoescape())
    env.filters["money"] = format_cents
    settings = runtime.settings
    zone = settings.zone
    env.filters["day"] = format_day
    env.globals["day_field"] = DAY_FIELD_PATTERN
    env.filters["clock"] = lambda moment: format_clock(moment, zone)
    env.filters["moment"] = lambda moment: format_moment(moment, zone)
    env.globals["service"] = runtime.spec
    env.globals["links"] = {name: settings.public_url(name) for name in DASHBOARD_SERVICES}
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
