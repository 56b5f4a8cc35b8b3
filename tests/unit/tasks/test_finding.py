"""What the task lists were asked for, read from their address (``finding``)."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

from ates.services.tasks.finding import parse_finding

ME = str(uuid.uuid4())


def test_my_tasks_show_open_ones_unless_asked_otherwise() -> None:
    mine = parse_finding({}, everyone=False)
    assert mine.filters(ME).assignee == ME and mine.filters(ME).status == "open"
    assert parse_finding({"status": "any"}, everyone=False).filters(ME).status is None
    everyone = parse_finding({}, everyone=True)
    assert everyone.filters(ME).assignee is None and everyone.filters(ME).status is None


def test_filters_go_into_the_list_and_back_into_its_links() -> None:
    person = str(uuid.uuid4())
    finding = parse_finding(
        {
            "q": "  sharpen   the beak ",
            "assignee": person,
            "status": "done",
            "created_by": "me",
            "sort": "completed",
            "page": "3",
        },
        everyone=True,
    )
    assert not finding.problems
    filters = finding.filters(ME)
    assert (filters.q, filters.assignee, filters.status, filters.created_by) == (
        "sharpen the beak",
        person,
        "done",
        ME,
    )
    link = parse_qs(urlsplit(finding.url(page=4)).query)
    assert link == {
        "q": ["sharpen the beak"],
        "assignee": [person],
        "status": ["done"],
        "created_by": ["me"],
        "sort": ["completed"],
        "page": ["4"],
    }
    # a new filter starts again at the first page
    assert "page" not in parse_qs(urlsplit(finding.url(status="open")).query)


def test_what_cannot_be_used_is_named_and_left_out() -> None:
    finding = parse_finding(
        {"q": "x\x00", "assignee": "polly", "status": "lost", "sort": "price", "page": "0"},
        everyone=True,
    )
    assert [p.split(":")[0] for p in finding.problems] == [
        "Search",
        "Assignee",
        "Status",
        "Sort",
        "Page",
    ]
    assert (finding.q, finding.assignee, finding.status, finding.sort, finding.page) == (
        "",
        "",
        "",
        "created",
        1,
    )
    # a worker's list is their own, whatever the address says
    assert parse_finding({"assignee": str(uuid.uuid4())}, everyone=False).filters(ME).assignee == ME
