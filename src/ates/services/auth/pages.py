"""Auth's HTML pages: the sign-in form, and people management for admins."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from ates.platform.dependencies import RuntimeDep
from ates.platform.login import safe_next
from ates.platform.params import is_uuid
from ates.platform.runtime import Runtime
from ates.platform.web import error_page, flash, render
from ates.services.auth import commands, queries
from ates.services.auth.commands import SignInRefused
from ates.services.auth.domain import ROLES, PersonConflict, PersonRuleError
from ates.services.auth.models import Person
from ates.services.auth.oauth.provider import Provider, ProviderDep
from ates.services.auth.session import (
    CSRF_FIELD,
    SignedIn,
    SignedInAdmin,
    csrf_ok,
    csrf_token,
    end_session,
    principal,
    signed_in_person,
    start_session,
)

router = APIRouter(include_in_schema=False)

FORM_EXPIRED = "The form expired. Please try again."
# after a correct one-time password: whose new password the "choose" form sets, and where
# to go then (nobody is signed in until they have chosen it)
CHOOSING_KEY = "choosing_password"


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    # No site may frame the sign-in and admin forms (clickjacking): the platform's
    # headers (X-Frame-Options, CSP frame-ancestors) say so on every response.
    return render(request, template, status_code=status_code, **context)


def signed_out_page(request: Request, provider: Provider, then: str | None) -> Response:
    """ "Signed out", with every dashboard's front-channel logout URL in a hidden iframe
    (OpenID Connect Front-Channel Logout 1.0) so their sessions end too, then on to
    ``then`` (the client's registered post-logout page) if there is one."""
    issuer = urlencode({"iss": provider.settings.issuer})
    frames = [
        f"{client.frontchannel_logout_uri}?{issuer}"
        for client in provider.clients.values()
        if client.frontchannel_logout_uri
    ]
    return page(
        request, "logout.html", user=None, signed_out=True, frames=frames, then=then, params={}
    )


def _login_page(
    request: Request,
    next_url: str,
    *,
    error: str | None = None,
    username: str = "",
    status: int = 200,
) -> Response:
    return page(
        request,
        "login.html",
        status_code=status,
        user=None,
        next=next_url,
        username=username,
        error=error,
        csrf_token=csrf_token(request),
    )


@router.get("/login")
async def login_form(
    request: Request, runtime: RuntimeDep, next: str = "/", prompt: str = ""
) -> Response:
    """The form; someone already signed in goes straight on, unless a client asked for
    the password again (OpenID ``prompt=login``)."""
    next_url = safe_next(next)
    if prompt != "login" and await signed_in_person(request, runtime) is not None:
        return RedirectResponse(next_url, status_code=303)
    return _login_page(request, next_url)


@router.post("/login")
async def login(
    request: Request,
    runtime: RuntimeDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form(alias=CSRF_FIELD)] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    next_url = safe_next(next)
    if not csrf_ok(request, csrf):
        return _login_page(request, next_url, error=FORM_EXPIRED, username=username, status=400)
    if not username or not password:
        return _login_page(
            request,
            next_url,
            error="Enter your username and password.",
            username=username,
            status=422,
        )
    try:
        person = await commands.sign_in(runtime.db, username, password)
    except SignInRefused as refused:
        status = 429 if refused.locked else 401
        return _login_page(request, next_url, error=str(refused), username=username, status=status)
    if person.must_change_password:
        request.session[CHOOSING_KEY] = {"public_id": person.public_id, "next": next_url}
        return RedirectResponse("/password", status_code=303)
    await start_session(request, runtime, person)
    return RedirectResponse(next_url, status_code=303)


def _choose_page(request: Request, error: str | None = None, status: int = 200) -> Response:
    return page(
        request,
        "choose_password.html",
        status_code=status,
        user=None,
        error=error,
        csrf_token=csrf_token(request),
    )


@router.get("/password")
async def choose_password_form(request: Request) -> Response:
    """After signing in with a one-time password: choose your own before going on."""
    if not isinstance(request.session.get(CHOOSING_KEY), dict):
        return RedirectResponse("/login", status_code=303)
    return _choose_page(request)


@router.post("/password")
async def choose_password(
    request: Request,
    runtime: RuntimeDep,
    password: Annotated[str, Form()] = "",
    again: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Response:
    choosing = request.session.get(CHOOSING_KEY)
    if not isinstance(choosing, dict):
        return RedirectResponse("/login", status_code=303)
    if not csrf_ok(request, csrf):
        return _choose_page(request, FORM_EXPIRED, 400)
    if password != again:
        return _choose_page(request, "New password and Again differ: type the same twice.", 422)
    try:
        async with runtime.uow() as uow:
            person = await commands.choose_password(uow, choosing["public_id"], password)
    except PersonRuleError as rule:
        return _choose_page(request, f"New password: {rule.message}.", 422)
    except queries.PersonNotFound:
        request.session.pop(CHOOSING_KEY, None)
        return RedirectResponse("/login", status_code=303)
    await start_session(request, runtime, person)  # a new session: the marker goes with the old
    flash(request, "Your new password is set.", "success")
    return RedirectResponse(safe_next(choosing.get("next")), status_code=303)


@router.post("/logout")
async def logout(request: Request, runtime: RuntimeDep, provider: ProviderDep) -> Response:
    await end_session(request, runtime)
    return signed_out_page(request, provider, None)


@router.get("/")
async def home(request: Request, person: SignedIn, runtime: RuntimeDep) -> Response:
    people: list[Person] = []
    if person.role == "admin":
        async with runtime.uow() as uow:
            people = await queries.list_people(uow)
    return page(
        request,
        "home.html",
        user=principal(person),
        person=person,
        people=people,
        roles=ROLES,
        csrf_token=csrf_token(request),
        form={},
    )


@router.post("/people")
async def create_person(
    request: Request,
    admin: SignedInAdmin,
    runtime: RuntimeDep,
    username: Annotated[str, Form()] = "",
    full_name: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "worker",
    password: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Response:
    form = {"username": username, "full_name": full_name, "email": email, "role": role}
    error: str | None = None
    if not csrf_ok(request, csrf):
        error = FORM_EXPIRED
    else:
        command = commands.CreatePerson(
            username=username.strip(),
            role=role,
            password=password,
            email=email.strip() or None,
            full_name=full_name.strip() or None,
        )
        try:
            async with runtime.uow() as uow:
                created = await commands.create_person(uow, command)
        except PersonRuleError as rule:
            error = str(rule)
        except commands.PersonExists as exists:
            error = str(exists)
        else:
            flash(request, f"{created.full_name} ({created.username}) can now sign in.", "success")
            return RedirectResponse("/", status_code=303)
    async with runtime.uow() as uow:
        people = await queries.list_people(uow)
    return page(
        request,
        "home.html",
        status_code=422 if error != FORM_EXPIRED else 400,
        user=principal(admin),
        person=admin,
        people=people,
        roles=ROLES,
        csrf_token=csrf_token(request),
        form=form,
        error=error,
    )


@router.get("/people/{public_id}")
async def person_page(
    request: Request, public_id: str, admin: SignedInAdmin, runtime: RuntimeDep
) -> Response:
    return await _person_page(request, admin, runtime, public_id, "person.html", roles=ROLES)


@router.post("/people/{public_id}")
async def change_person(
    request: Request,
    public_id: str,
    admin: SignedInAdmin,
    runtime: RuntimeDep,
    full_name: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "",
    active: Annotated[str, Form()] = "",
    confirmed: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Response:
    if not csrf_ok(request, csrf):
        flash(request, FORM_EXPIRED, "error")
        return RedirectResponse(f"/people/{public_id}", status_code=303)
    if active == "no" and confirmed != "yes":
        before = await _person_or_none(runtime, public_id)
        if before is not None and before.active:
            # deactivating is the one edit that locks someone out: ask first
            return page(
                request,
                "confirm_deactivate.html",
                user=principal(admin),
                person=before,
                form={"full_name": full_name, "email": email, "role": role, "active": active},
                csrf_token=csrf_token(request),
            )
    command = commands.ChangePerson(
        public_id=public_id,
        role=role or None,
        full_name=full_name or None,
        email=email or None,
        active=active == "yes" if active in ("yes", "no") else None,
        actor_public_id=admin.public_id,
    )
    try:
        if not is_uuid(public_id):
            raise queries.PersonNotFound(public_id)
        async with runtime.uow() as uow:
            person = await commands.change_person(uow, command)
    except queries.PersonNotFound:
        flash(request, "There is no such person.", "error")
        return RedirectResponse("/", status_code=303)
    except (PersonRuleError, PersonConflict) as refused:
        flash(request, str(refused), "error")
        return RedirectResponse(f"/people/{public_id}", status_code=303)
    flash(request, f"Saved {person.full_name} ({person.username}).", "success")
    return RedirectResponse(f"/people/{public_id}", status_code=303)


@router.get("/people/{public_id}/password")
async def confirm_reset(
    request: Request, public_id: str, admin: SignedInAdmin, runtime: RuntimeDep
) -> Response:
    """The question before a password reset, saying what it does."""
    return await _person_page(request, admin, runtime, public_id, "confirm_reset.html")


@router.post("/people/{public_id}/password")
async def reset_password(
    request: Request,
    public_id: str,
    admin: SignedInAdmin,
    runtime: RuntimeDep,
    csrf: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Response:
    if not csrf_ok(request, csrf):
        flash(request, FORM_EXPIRED, "error")
        return RedirectResponse(f"/people/{public_id}/password", status_code=303)
    if await _person_or_none(runtime, public_id) is None:
        return error_page(request, 404, "There is no such person.")
    command = commands.ResetPassword(public_id=public_id, actor_public_id=admin.public_id)
    async with runtime.uow() as uow:
        person, one_time = await commands.reset_password(uow, command)
    # shown once, on this answer only: never in a flash (the session cookie) or a log
    response = page(
        request, "reset_done.html", user=principal(admin), person=person, one_time=one_time
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def _person_page(
    request: Request,
    admin: Person,
    runtime: Runtime,
    public_id: str,
    template: str,
    **context: Any,
) -> Response:
    """A page with a form about the person ``public_id``; 404 when there is no such person."""
    person = await _person_or_none(runtime, public_id)
    if person is None:
        return error_page(request, 404, "There is no such person.")
    return page(
        request,
        template,
        user=principal(admin),
        person=person,
        csrf_token=csrf_token(request),
        **context,
    )


async def _person_or_none(runtime: Runtime, public_id: str) -> Person | None:
    if not is_uuid(public_id):  # nobody has such an id (and PostgreSQL may refuse it)
        return None
    async with runtime.uow() as uow:
        try:
            return await queries.get_person(uow, public_id)
        except queries.PersonNotFound:
            return None
