"""The task tracker's rules, without I/O."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from ates.services.tasks import domain
from ates.services.tasks.domain import (
    AlreadyDone,
    NoActiveWorker,
    NotTheAssignee,
    check_completion,
    check_jira_id,
    check_title,
    draw_assignees,
)


@pytest.mark.parametrize("title", ["[POPUG-1] Fix", "Fix ]it", "a[b", "[]"])
def test_a_title_with_brackets_is_refused_and_says_where_the_jira_id_goes(title: str) -> None:
    with pytest.raises(ValueError, match=r"must not contain '\[' or '\]'.*jira_id"):
        check_title(title)


def test_a_title_is_trimmed_and_must_not_be_empty_or_too_long() -> None:
    assert check_title("  Sharpen the beak ") == "Sharpen the beak"
    with pytest.raises(ValueError, match="empty"):
        check_title("   ")
    with pytest.raises(ValueError, match="at most 300"):
        check_title("x" * 301)


def test_a_jira_id_is_optional_one_word_without_brackets() -> None:
    assert check_jira_id(None) is None
    assert check_jira_id("  ") is None
    assert check_jira_id(" POPUG-42 ") == "POPUG-42"
    for bad in ("POPUG 42", "[POPUG-42]", "x" * 65):
        with pytest.raises(ValueError):
            check_jira_id(bad)


def test_only_the_assignee_completes_and_only_once() -> None:
    check_completion(status=domain.OPEN, assignee="a", by="a")
    with pytest.raises(NotTheAssignee):
        check_completion(status=domain.OPEN, assignee="a", by="b")
    with pytest.raises(AlreadyDone):
        check_completion(status=domain.DONE, assignee="a", by="a")
    # someone else poking a done task is told they are not the assignee
    with pytest.raises(NotTheAssignee):
        check_completion(status=domain.DONE, assignee="a", by="b")


def test_assignees_are_drawn_from_the_workers_uniformly_with_repeats() -> None:
    workers = ["w1", "w2", "w3", "w4"]
    drawn = draw_assignees(workers, 40_000, random.Random(7))
    counts = Counter(drawn)
    assert set(counts) == set(workers)
    assert all(9_000 < n < 11_000 for n in counts.values()), counts
    assert draw_assignees(["only"], 3) == ["only", "only", "only"]


def test_drawing_without_workers_is_refused() -> None:
    with pytest.raises(NoActiveWorker):
        draw_assignees([], 1)


@pytest.mark.parametrize(
    ("check", "value"),
    [
        (domain.check_title, "Fix\x00 the perch"),
        (domain.check_jira_id, "POPUG-\x001"),
        (domain.check_description, "a NUL \x00 inside"),
        (domain.check_description, "x" * 10_001),
    ],
)
def test_text_postgresql_cannot_store_is_refused(check: Any, value: str) -> None:
    with pytest.raises(ValueError):
        check(value)


def test_a_search_is_taken_literally() -> None:
    from ates.services.tasks.queries import like_pattern

    assert like_pattern("100%_off\\") == "%100\\%\\_off\\\\%"
