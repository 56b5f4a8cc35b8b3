"""Errors of the JSON API: their bodies, their wording, and how the OpenAPI documents
describe them.

Every error is ``{"detail": "<field>: <what is wrong>"}`` (DESIGN.md §4); a 422 from
request validation also lists the problems one by one in ``errors``. The wording is the
pages' ("title: must not be empty"), not pydantic's ("Value error, …").
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel


class ErrorOut(BaseModel):
    detail: str


class FieldErrorOut(BaseModel):
    loc: list[str]
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    detail: str
    # one item per problem when FastAPI validated the request; a rule the service checks
    # itself (a day in the future, say) answers with ``detail`` alone
    errors: list[FieldErrorOut] = []


WHY = {
    400: "The request cannot be read",
    401: "No bearer token, or not a valid one",
    403: "The token's role may not do this",
    404: "Not found",
    409: "Not possible in the current state",
    413: "The body is too large",
    422: "Invalid input; `detail` names the field",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route or router: these error statuses, documented."""
    return {code: {"model": ErrorOut, "description": WHY[code]} for code in codes}


# --- wording -------------------------------------------------------------------------------

_WHERE = {"body", "query", "path", "header", "cookie"}


def _message(item: dict[str, Any]) -> str:
    kind = str(item.get("type", ""))
    ctx: dict[str, Any] = item.get("ctx") or {}
    worded = {
        "missing": "is required",
        "extra_forbidden": "is not a known field",
        "string_type": "must be a string",
        "int_type": "must be a whole number",
        "int_parsing": "must be a whole number",
        "int_from_float": "must be a whole number",
        "bool_type": "must be true or false",
        "bool_parsing": "must be true or false",
        "uuid_type": "must be a UUID",
        "uuid_parsing": "must be a UUID",
        "date_type": "must be a date YYYY-MM-DD",
        "date_parsing": "must be a date YYYY-MM-DD",
        "date_from_datetime_parsing": "must be a date YYYY-MM-DD",
        "dict_type": "must be a JSON object",
        "model_type": "must be a JSON object",
        "model_attributes_type": "must be a JSON object",
        "list_type": "must be a JSON array",
    }
    if kind in worded:
        return worded[kind]
    bounds = {
        "string_too_long": ("must be at most {} characters", "max_length"),
        "string_too_short": ("must be at least {} characters", "min_length"),
        "less_than_equal": ("must be at most {}", "le"),
        "greater_than_equal": ("must be at least {}", "ge"),
        "less_than": ("must be less than {}", "lt"),
        "greater_than": ("must be more than {}", "gt"),
        "literal_error": ("must be {}", "expected"),
        "enum": ("must be {}", "expected"),
    }
    if kind in bounds and bounds[kind][1] in ctx:
        template, key = bounds[kind]
        return template.format(ctx[key])
    if kind == "json_invalid":
        return f"not valid JSON ({ctx.get('error', 'cannot be parsed')})"
    message = str(item.get("msg", "invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message[:1].lower() + message[1:]


def _field(item: dict[str, Any]) -> str:
    if item.get("type") == "json_invalid":
        return "body"
    loc = [str(p) for p in item.get("loc", ()) if p not in _WHERE]
    return ".".join(loc) or "body"


def describe_validation_error(error: RequestValidationError) -> str:
    return "; ".join(f"{_field(item)}: {_message(item)}" for item in error.errors())


def jsonable_errors(error: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {
            "loc": [str(p) for p in item.get("loc", ())],
            "msg": _message(item),
            "type": str(item.get("type", "")),
        }
        for item in error.errors()
    ]


# --- the OpenAPI document ---------------------------------------------------------------


def document_errors(app: FastAPI) -> None:
    """FastAPI documents every 422 as its own list of errors; ours is ``ValidationErrorOut``."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, routes=app.routes, description=None
            )
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            ours = ValidationErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(ours.pop("$defs", {}))
            schemas["HTTPValidationError"] = ours
            schemas.pop("ValidationError", None)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
