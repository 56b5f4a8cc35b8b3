"""What notifications say, without I/O."""

from __future__ import annotations

from datetime import date

import pytest

from ates.services.notifications.domain import (
    Message,
    Recipient,
    TaskRef,
    assignment_messages,
    payout_messages,
)
from ates.services.notifications.notifier import RecordingNotifier, StdoutNotifier

POLLY = Recipient("p-1", full_name="Polly Parrot", username="polly", email="polly@example.com")


def test_an_assignment_is_one_line_per_channel_naming_the_person_and_the_task() -> None:
    lines = [
        m.line() for m in assignment_messages(POLLY, TaskRef("t-1", "Fly", "POPUG-42"), "created")
    ]
    assert lines == [
        "[email] to Polly Parrot <polly@example.com>: Polly Parrot, the task “Fly” (POPUG-42)"
        " is assigned to you.",
        "[slack] to @polly (Polly Parrot): Polly Parrot, the task “Fly” (POPUG-42)"
        " is assigned to you.",
        "[sms] to Polly Parrot: Polly Parrot, the task “Fly” (POPUG-42) is assigned to you.",
    ]


def test_a_shuffle_says_so_and_a_task_without_jira_id_has_no_brackets() -> None:
    (email, *_) = assignment_messages(POLLY, TaskRef("t-1", "Fly"), "shuffle")
    assert email.text == "Polly Parrot, the task “Fly” is reassigned to you by a shuffle."


def test_unknown_people_and_tasks_are_named_by_their_ids() -> None:
    messages = assignment_messages(Recipient("p-9"), TaskRef("t-9"), "created")
    assert [m.recipient for m in messages] == ["p-9", "p-9", "p-9"]
    assert messages[0].text == "p-9, the task task t-9 is assigned to you."


def test_a_payout_is_one_email_with_the_amount_and_the_day() -> None:
    (message,) = payout_messages(POLLY, 2_505, date(2026, 11, 25))
    assert message.line() == (
        "[email] to Polly Parrot <polly@example.com>: "
        "Polly Parrot, you were paid 25.05 $ for 2026-11-25."
    )


async def test_the_stdout_notifier_prints_one_line_per_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    await StdoutNotifier().send(Message("sms", "Polly", "hello"))
    assert capsys.readouterr().out == "[sms] to Polly: hello\n"


async def test_the_recording_notifier_keeps_what_was_sent() -> None:
    notifier = RecordingNotifier()
    await notifier.send(Message("email", "Polly", "hi"))
    assert notifier.lines() == ["[email] to Polly: hi"]
