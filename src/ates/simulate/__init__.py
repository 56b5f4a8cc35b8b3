"""``ates simulate``: fill a running aTES with a believable working day, for a demo.

It is a client like any other: it uses only the public HTTP API (DESIGN.md §4), with
tokens got the way ``ates token`` gets them (the ``ates-cli`` PKCE flow with the login
form filled in), as the demo people whose passwords ``ates up`` wrote to
``<data dir>/demo-logins.txt`` and as the workers it creates itself. In order:

1. the admin creates ``workers`` new workers (``POST /api/users``) — their logins are
   printed and appended to ``<data dir>/simulated-logins.txt`` — and it waits until their
   ``AccountCreated`` has been taken in (see :func:`_wait_for_people`);
2. random people create ``tasks`` tasks, each landing on a random worker;
3. the manager presses Shuffle ``shuffles`` times;
4. a ``complete_ratio`` share of the tasks is completed, each by its assignee;
5. it waits until billing has booked every fee and reward of these tasks and, with
   ``close_day``, closes today (paying out positive balances);
6. it prints a summary: what it did, the money billing booked for it, and today's
   management earnings as billing and analytics see them.

Choices (names, titles, who creates what, which tasks get done) follow ``seed``; passwords
never do.
"""

from ates.simulate.client import read_logins
from ates.simulate.plan import Login, Plan, SimulationError, Summary
from ates.simulate.report import render
from ates.simulate.workload import run

__all__ = ["Login", "Plan", "SimulationError", "Summary", "read_logins", "render", "run"]
