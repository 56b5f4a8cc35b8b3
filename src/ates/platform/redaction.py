"""Keeping secrets out of log lines, whoever wrote them.

Every rendered log line (ours through structlog, and every library's through the standard
``logging``, Authlib's DEBUG lines included) passes :func:`redact` last, so a secret is
removed however it got in: a JWT anywhere, the password of a URL, the value of anything
named like a password, secret, token or session, a bearer credential, and values a
process registers with :func:`remember` (its ``ATES_SECRET_KEY``).
"""

from __future__ import annotations

import re

REDACTED = "[redacted]"

# header.payload[.signature], both base64url-encoded JSON objects ('{"' → 'eyJ')
_JWT = re.compile(r"eyJ[\w-]{2,}\.eyJ[\w-]{2,}\.?[\w-]*")
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/?#@\s]*:)[^@/\s]+@", re.IGNORECASE)
_CREDENTIAL = re.compile(r"\b(bearer|basic)\s+[\w.~+/-]+=*", re.IGNORECASE)
_NAMED = re.compile(
    r"""
    (?P<name>
        \b[\w-]*(?:password|passwd|secret|token|token_hint|code_verifier|cookie|_session)\b
        | [?&]code                                        # an authorization code in a URL
    )
    (?P<sep>['"]?\s*[:=]\s*)
    (?P<value>'[^']*'|"[^"]*"|[^\s&,;()\[\]{}'"]+)
    """,
    re.IGNORECASE | re.VERBOSE,
)

_remembered: set[str] = set()


def remember(*values: str | None) -> None:
    """Redact these exact values too (e.g. the secret key) from every later log line."""
    _remembered.update(v for v in values if v and len(v) >= 8)


def _named(match: re.Match[str]) -> str:
    value = match["value"]
    quote = value[0] if value[0] in "'\"" else ""
    return f"{match['name']}{match['sep']}{quote}{REDACTED}{quote}"


def redact(text: str) -> str:
    for value in _remembered:
        text = text.replace(value, REDACTED)
    text = _JWT.sub(REDACTED, text)
    text = _URL_PASSWORD.sub(rf"\g<1>{REDACTED}@", text)
    text = _CREDENTIAL.sub(rf"\g<1> {REDACTED}", text)
    return _NAMED.sub(_named, text)
