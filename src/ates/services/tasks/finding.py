"""What a person asked the task lists for: the search, filters, sort and page of My tasks
and All tasks, read from the address and written back into links.

Pages forgive: a value they cannot use is named in a message and left out, and the list
is shown without it (the API, by contrast, refuses it with a 422).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

from ates.platform.params import is_uuid
from ates.services.tasks import queries
from ates.services.tasks.domain import STATUSES


@dataclass(frozen=True)
class Finding:
    everyone: bool  # All tasks (True) or My tasks
    q: str = ""
    assignee: str = ""  # a person's public id; All tasks only
    status: str = ""  # "", "open" or "done"
    created_by_me: bool = False
    sort: queries.Sort = "created"
    page: int = 1
    problems: tuple[str, ...] = field(default=(), compare=False)

    @property
    def path(self) -> str:
        return "/all" if self.everyone else "/mine"

    def filters(self, me: str) -> queries.Filters:
        return queries.Filters(
            assignee=(self.assignee or None) if self.everyone else me,
            status=self.status or None,
            q=self.q or None,
            created_by=me if self.created_by_me else None,
        )

    def url(self, **changes: Any) -> str:
        """This list's address with ``changes`` (a new filter starts again at page 1
        unless the change is the page)."""
        chosen = replace(self, **({"page": 1} | changes))
        query = {
            "q": chosen.q,
            "assignee": chosen.assignee if chosen.everyone else "",
            "status": chosen.status,
            "created_by": "me" if chosen.created_by_me else "",
            "sort": chosen.sort if chosen.sort != "created" else "",
            "page": str(chosen.page) if chosen.page > 1 else "",
        }
        if not chosen.everyone and not chosen.status:
            query["status"] = "any"  # My tasks shows open ones unless asked otherwise
        pairs = {k: v for k, v in query.items() if v}
        return f"{self.path}?{urlencode(pairs)}" if pairs else self.path


def parse_finding(params: Mapping[str, str], *, everyone: bool) -> Finding:
    problems: list[str] = []
    q = " ".join(params.get("q", "").split())
    if "\x00" in q or len(q) > queries.MAX_QUERY:
        problems.append(f"Search: at most {queries.MAX_QUERY} characters of text; showing all.")
        q = ""
    assignee = params.get("assignee", "").strip() if everyone else ""
    if assignee and not is_uuid(assignee):
        problems.append("Assignee: choose a person from the list; showing everyone's.")
        assignee = ""
    status = params.get("status", "" if everyone else "open")
    if status == "any":
        status = ""
    if status and status not in STATUSES:
        problems.append(f"Status: {status!r} is neither open nor done; showing both.")
        status = ""
    sort = params.get("sort", "created") or "created"
    if sort not in queries.SORTS:
        problems.append("Sort: by created or by completed; sorted by created.")
        sort = "created"
    try:
        page = int(params.get("page", "1") or "1")
        if not 1 <= page <= queries.MAX_CURSOR:
            raise ValueError
    except ValueError:
        problems.append("Page: a whole number from 1; showing the first page.")
        page = 1
    return Finding(
        everyone=everyone,
        q=q,
        assignee=assignee,
        status=status,
        created_by_me=params.get("created_by", "") == "me",
        sort=sort,  # type: ignore[arg-type]
        page=page,
        problems=tuple(problems),
    )
