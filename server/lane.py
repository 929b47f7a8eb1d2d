"""The engine lane: the one thread of a serving process that runs the engine's work.

Why a thread: a gRPC call reaches Python only when the event loop accepts it (grpc.aio
asks the core for one call at a time, from the loop). If the engine ran on the loop, a busy
server would accept new calls no faster than it finished old ones: they would queue inside
gRPC, invisible, for hundreds of milliseconds, no limit could refuse them (none of them has
started), and a health check or a Ping would wait behind every quote. With the engine's
work on this lane, the loop stays free to accept, admit or refuse, and answer health and
Ping at once; the work itself still runs one call at a time, as before.

Admission (:meth:`EngineLane.run`): a call whose lines would push the lines queued on the
lane past ``max_queued_lines`` is refused at once with :class:`~server.errors.Overloaded`
(RESOURCE_EXHAUSTED), unless the lane is idle — a single call within the per-request
line limit always gets its turn. The count of calls in flight is limited separately (the
``LimitInterceptor``); together they bound how long an admitted call can wait. A call
whose deadline has passed by the time its turn comes is dropped without doing the work
(its caller has already given up).

Only the lane reads the engine state: a handler hands the lane a function that pins the
state (``host.reading()``), computes, builds the response and serialises it to bytes, so
the loop never holds a large message either.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from server.errors import DeadlinePassed, Overloaded

__all__ = ["DEFAULT_SWITCH_INTERVAL_S", "EngineLane"]

T = TypeVar("T")

#: How long the lane may hold the GIL before the loop thread gets a turn (CPython's
#: default is 5 ms). The loop only needs short turns (accept, admit, answer a Ping), so a
#: shorter interval bounds how long a waiting Ping or a refusal sits behind engine work.
DEFAULT_SWITCH_INTERVAL_S = 0.001

_STOP = object()


class EngineLane:
    """One worker thread that runs engine work in arrival order, with admission control.

    The thread takes (work, the caller's loop future) from a plain queue and settles the
    future with ``loop.call_soon_threadsafe``: one hop each way and nothing else. (Through
    ``loop.run_in_executor`` every call also went through a concurrent.futures.Future, the
    executor's lock and ``asyncio.wrap_future``'s state copying: about a fifth of the event
    loop's busy time per Quote in the bench profile.)
    """

    def __init__(self, max_queued_lines: int, *, switch_interval_s: float | None = None) -> None:
        self.max_queued_lines = max_queued_lines
        self.queued_lines = 0
        self.queued_calls = 0
        self.refused = 0
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="engine-lane", daemon=True)
        self._thread.start()
        self._closed = False
        if switch_interval_s is not None:
            sys.setswitchinterval(switch_interval_s)

    async def run(self, lines: int, work: Callable[[], T], deadline: float | None = None) -> T:
        """Run ``work`` on the lane and return its result (its exception is raised here).

        ``lines`` is the call's size for admission; ``deadline`` (``time.monotonic()``
        clock) drops the work if its turn comes after it.
        """
        if self._closed:
            raise RuntimeError("engine lane: closed")
        if self.queued_calls and self.queued_lines + lines > self.max_queued_lines:
            self.refused += 1
            raise Overloaded(
                f"server: {self.queued_lines} lines already queued for the engine "
                f"(limit: max_queued_lines {self.max_queued_lines}); retry with backoff"
            )
        self.queued_lines += lines
        self.queued_calls += 1
        try:
            loop = asyncio.get_running_loop()
            future: asyncio.Future[T] = loop.create_future()
            # the call's context goes along (the caller's principal lives in a ContextVar)
            self._queue.put((contextvars.copy_context(), work, deadline, loop, future))
            return await future
        finally:
            self.queued_lines -= lines
            self.queued_calls -= 1

    def close(self) -> None:
        """Stop taking work; work already queued still runs."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)

    def _serve(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            context, work, deadline, loop, future = item
            if future.cancelled():  # the caller left before its turn
                continue
            try:
                result = context.run(_on_time, work, deadline)
            except BaseException as error:  # handed to the caller, raised there
                _settle_soon(loop, future, None, error)
            else:
                _settle_soon(loop, future, result, None)


def _settle_soon(
    loop: asyncio.AbstractEventLoop, future: Any, result: Any, error: BaseException | None
) -> None:
    with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
        loop.call_soon_threadsafe(_settle, future, result, error)


def _settle(future: Any, result: Any, error: BaseException | None) -> None:
    if future.done():  # cancelled while the work ran
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _on_time(work: Callable[[], T], deadline: float | None) -> T:
    if deadline is not None and time.monotonic() > deadline:
        raise DeadlinePassed("deadline: passed while the call waited for the engine")
    return work()
