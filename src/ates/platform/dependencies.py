"""What a request handler of any service asks FastAPI for: the process's ``Runtime``.

An ``async def`` on purpose: FastAPI runs a plain ``def`` dependency on a worker thread,
and a thread hop per request cost more than everything this one does.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ates.platform.service import Runtime


async def current_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(current_runtime)]
