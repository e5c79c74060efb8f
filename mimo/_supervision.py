"""Supervision: what a run does when one of its streams raises.

:class:`Stop` (the default) fails the run, as a stream's exception always
has. :class:`Restart` starts the stream's coroutine again, after a back-off,
with its ``state`` and its input queues kept, until too many restarts come
too close together. :class:`Supervisor` keeps one stream's record for one run
(shared by its ``workers`` copies); the runtime asks it what to do.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from mimo._errors import CLEAN_EXITS

log = logging.getLogger("mimo")

#: How many of a stream's latest restart causes a report keeps.
CAUSES_KEPT = 10


@dataclass(frozen=True, slots=True)
class Stop:
    """On an exception, fail the run: every other stream is cancelled and ``run()`` raises it.

    The default for every stream.
    """

    def __repr__(self) -> str:
        return "Stop()"


@dataclass(frozen=True, slots=True)
class Restart:
    """On an exception, start the stream again after a back-off; fail the run when restarts run out.

    The stream's coroutine (``run`` or ``fn``) is called again with the same
    ports and the same ``state``; items still queued on its inputs wait for
    the new attempt, while an item the failed attempt had already popped is
    not delivered again. Before the n-th restart of a window it waits
    ``backoff * 2**(n-1)`` seconds, at most ``max_backoff``, shortened at
    random by up to ``jitter`` of itself (so copies that fail together do not
    come back together). When a stream fails with ``max_restarts`` restarts
    already in the last ``within`` seconds, the run fails with that last
    exception, as under :class:`Stop`, with a note that restarts ran out.

    Only exceptions restart a stream: a clean end (``EndOfStream``,
    ``ConsumersGone``) and cancellation never do. The budget belongs to the
    stream: with ``workers=N`` its copies draw on one count, and only the
    copy that failed restarts. Every argument is checked here.
    """

    max_restarts: int = 5
    within: float = 60.0
    backoff: float = 0.1
    max_backoff: float = 10.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if isinstance(self.max_restarts, bool) or not isinstance(self.max_restarts, int):
            raise TypeError(f"Restart(): max_restarts must be an int >= 0, not {self.max_restarts!r}")
        if self.max_restarts < 0:
            raise ValueError(f"Restart(): max_restarts must be an int >= 0, not {self.max_restarts!r}")
        _seconds("within", self.within, positive=True)
        _seconds("backoff", self.backoff)
        _seconds("max_backoff", self.max_backoff)
        if self.max_backoff < self.backoff:
            raise ValueError(f"Restart(): max_backoff ({self.max_backoff!r}) must be >= backoff ({self.backoff!r})")
        if isinstance(self.jitter, bool) or not isinstance(self.jitter, int | float):
            raise TypeError(f"Restart(): jitter must be a number from 0 to 1, not {self.jitter!r}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"Restart(): jitter must be a number from 0 to 1, not {self.jitter!r}")

    def delay(self, n: int, rand: float = 0.0) -> float:
        """Seconds to wait before the ``n``-th restart (from 1) of a window; ``rand`` in [0, 1) draws the jitter."""
        base = min(self.max_backoff, self.backoff * 2.0 ** min(n - 1, 1000))
        return base * (1.0 - self.jitter * rand)


def _seconds(arg: str, value: Any, *, positive: bool = False) -> None:
    what = "> 0" if positive else ">= 0"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"Restart(): {arg} must be a number of seconds {what}, not {value!r}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"Restart(): {arg} must be a finite number of seconds {what}, not {value!r}")


#: What ``on_error`` accepts.
OnError = Stop | Restart

STOP = Stop()


def check_on_error(owner: str, value: object) -> OnError:
    """``value`` as a policy, or a ``TypeError`` naming the stream that says what to pass."""
    if isinstance(value, Stop | Restart):
        return value
    hint = f" (call it: {value.__name__}())" if value is Stop or value is Restart else ""
    raise TypeError(f"stream {owner!r}: on_error must be mimo.Stop() or mimo.Restart(...), not {value!r}{hint}")


def supervisor_for(stream: object, name: str) -> Supervisor | None:
    """A fresh restart record for one run of a stream that restarts; None under Stop (no cost at all)."""
    policy = getattr(stream, "on_error", STOP)
    return Supervisor(name, policy) if isinstance(policy, Restart) else None


def cause(exc: BaseException) -> str:
    """``ValueError: bad item``: an exception's type and message, on one line."""
    text = str(exc).replace("\n", " ").strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# The supervisor's clock, sleep and dice; module globals, looked up at each use,
# so that a test can replace them (a fake clock and an instant sleep).
clock: Callable[[], float] = time.monotonic
sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
rand: Callable[[], float] = random.random


class Supervisor:
    """One stream's restarts in one run: the count, the latest causes, the time spent backing off.

    Shared by the stream's copies. ``clock``, ``sleep`` and ``rand`` default to
    this module's globals of those names.
    """

    def __init__(
        self,
        name: str,
        policy: OnError,
        *,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        rand: Callable[[], float] | None = None,
    ) -> None:
        self.name = name
        self.policy = policy
        self._clock = clock
        self._sleep = sleep
        self._rand = rand
        #: Restarts so far (all copies).
        self.restarts = 0
        #: The latest causes, oldest first (at most ``CAUSES_KEPT``).
        self.causes: deque[str] = deque(maxlen=CAUSES_KEPT)
        # Seconds of the back-offs that have ended, added up over copies.
        self._backoff_done = 0.0
        # When each copy now backing off began to wait.
        self._waiting: dict[int, float] = {}
        # When the restarts that still count against the budget happened.
        self._recent: deque[float] = deque()

    def _now(self) -> float:
        return (self._clock or clock)()

    @property
    def backing_off(self) -> int:
        """How many copies wait to restart right now."""
        return len(self._waiting)

    @property
    def backoff_s(self) -> float:
        """Seconds spent waiting to restart so far, over all copies.

        A back-off that ran to its end counts as the delay chosen; one under
        way or cut short, as the time it has lasted.
        """
        now = time.perf_counter()
        return self._backoff_done + sum(now - t for t in self._waiting.values())

    def fields(self) -> dict[str, Any]:
        """The record as :class:`~mimo.StreamReport` fields (plain data)."""
        return {
            "restarts": self.restarts,
            "restart_causes": list(self.causes),
            "backoff_s": self.backoff_s,
            "backing_off": self.backing_off > 0,
        }

    def next_delay(self, exc: BaseException) -> float | None:
        """Record a failure; the back-off before the restart, or None when the stream must fail."""
        policy = self.policy
        if not isinstance(policy, Restart):
            return None
        now = self._now()
        recent = self._recent
        while recent and recent[0] <= now - policy.within:
            recent.popleft()
        if len(recent) >= policy.max_restarts:
            return None
        recent.append(now)
        self.restarts += 1
        self.causes.append(cause(exc))
        return policy.delay(len(recent), (self._rand or rand)())

    def ran_out(self, exc: BaseException) -> None:
        """Note on ``exc`` that the stream failed with its restarts used up (it keeps its type)."""
        policy = self.policy
        if not isinstance(policy, Restart):
            return
        note = (
            f"mimo stream {self.name!r} ran out of restarts: it failed with {policy.max_restarts} "
            f"restart(s) already in the last {policy.within:g} s ({self.restarts} in the whole run)"
        )
        try:
            exc.add_note(note)
        except Exception:
            pass  # an exception that refuses notes goes out as it is

    async def run(self, body: Callable[[], Awaitable[None]], copy: int, stopping: Callable[[], bool]) -> None:
        """Run ``body()`` under the policy: on an exception, back off and call it again, or raise.

        ``stopping()`` true means the run is ending: an exception then is
        raised, never restarted. Cancellation, during an attempt or a
        back-off, goes straight out.
        """
        while True:
            try:
                await body()
                return
            except CLEAN_EXITS:
                raise
            except Exception as exc:
                if stopping():
                    raise
                delay = self.next_delay(exc)
                if delay is None:
                    self.ran_out(exc)
                    raise
                log.warning("stream %r failed (%s); restart %d in %.3f s", self.name, cause(exc), self.restarts, delay)
                del exc  # the failed attempt's frames are not kept through the back-off
            self._waiting[copy] = time.perf_counter()
            slept = False
            try:
                await (self._sleep or sleep)(delay)
                slept = True
            finally:
                began = self._waiting.pop(copy)
                self._backoff_done += delay if slept else time.perf_counter() - began
