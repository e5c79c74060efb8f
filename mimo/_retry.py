"""``Retry``: how a stock stream retries a per-item call that fails (``lib.map(..., retry=Retry(...))``)."""

from __future__ import annotations

import asyncio
import math
import random as _random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

__all__ = ["Retry"]


def _seconds(arg: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"Retry(): {arg} must be a number of seconds >= 0, not {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"Retry(): {arg} must be a finite number of seconds >= 0, not {value!r}")


@dataclass(frozen=True, slots=True)
class Retry:
    """Try a failing call again, up to ``attempts`` calls in all, waiting longer each time.

    Only exceptions of the types in ``on`` are retried (others fail at once).
    Before retry *k* (1, 2, ...) it waits ``min(max_backoff, backoff *
    multiplier ** (k - 1))`` seconds, less up to ``jitter`` of it at random
    (``jitter=0.5``: between half and all of it), so that many failing items
    do not all retry at the same instant. ``sleep`` and ``random`` are there
    for tests (a fake sleep, a fixed draw). Every argument is checked here.
    """

    attempts: int = 3
    backoff: float = 0.1
    max_backoff: float = 10.0
    multiplier: float = 2.0
    jitter: float = 0.5
    on: type[BaseException] | tuple[type[BaseException], ...] = (Exception,)
    sleep: Callable[[float], Awaitable[object]] = field(default=asyncio.sleep, repr=False, compare=False)
    random: Callable[[], float] = field(default=_random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        a = self.attempts
        if isinstance(a, bool) or not isinstance(a, int):
            raise TypeError(f"Retry(): attempts must be an int >= 1 (calls in all, the first included), not {a!r}")
        if a < 1:
            raise ValueError(f"Retry(): attempts must be an int >= 1 (calls in all, the first included), not {a!r}")
        _seconds("backoff", self.backoff)
        _seconds("max_backoff", self.max_backoff)
        if self.max_backoff < self.backoff:
            raise ValueError(f"Retry(): max_backoff ({self.max_backoff!r}) must be >= backoff ({self.backoff!r})")
        m = self.multiplier
        if isinstance(m, bool) or not isinstance(m, int | float):
            raise TypeError(f"Retry(): multiplier must be a number >= 1, not {m!r}")
        if not (math.isfinite(m) and m >= 1):
            raise ValueError(f"Retry(): multiplier must be a finite number >= 1, not {m!r}")
        j = self.jitter
        if isinstance(j, bool) or not isinstance(j, int | float):
            raise TypeError(f"Retry(): jitter must be a number from 0 to 1, not {j!r}")
        if not 0 <= j <= 1:
            raise ValueError(f"Retry(): jitter must be a number from 0 to 1 (a share of each wait), not {j!r}")
        on = self.on if isinstance(self.on, tuple) else (self.on,)
        if not on or not all(isinstance(t, type) and issubclass(t, Exception) for t in on):
            raise TypeError(
                f"Retry(): on must be an exception class or a tuple of them (Exception subclasses), not {self.on!r}"
            )
        object.__setattr__(self, "on", on)
        for name in ("sleep", "random"):
            if not callable(getattr(self, name)):
                raise TypeError(f"Retry(): {name} must be callable, not {getattr(self, name)!r}")

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first), jitter included."""
        full = min(self.max_backoff, self.backoff * self.multiplier ** (retry - 1))
        return full * (1.0 - self.jitter * self.random())
