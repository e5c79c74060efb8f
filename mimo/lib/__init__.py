"""Stock streams, by kind: what users would otherwise write by hand.

Written with the same ``@stream`` users use. Use them through the module,
``from mimo import lib`` then ``lib.map(f)``: ``map``, ``filter``, ``zip`` and
``range`` share their names with builtins on purpose.

* :mod:`~mimo.lib.sources`: :func:`from_iterable`, :func:`from_async_iterable`,
  :func:`range`, :func:`file_lines`.
* :mod:`~mimo.lib.transforms`: :func:`map`, :func:`filter`, :func:`flat_map`,
  :func:`batch`, :func:`unbatch`, :func:`rate_limit`.
* :mod:`~mimo.lib.combine`: :func:`merge`, :func:`zip`, :func:`broadcast`,
  :func:`balance`, :func:`split`, :func:`join`.
* :mod:`~mimo.lib.sinks`: :func:`collect`, :func:`for_each`, :func:`to_file`.
* :mod:`~mimo.lib.parallel`: :func:`~mimo.lib.parallel.parallel_map`.
* :mod:`~mimo.lib.windows`: :func:`tumbling`, :func:`sliding`, :func:`session`,
  pushing :class:`Window` objects (also here, with :class:`ManualClock` for tests).

A single input port is called ``inp`` and a single output ``out``.
"""

from mimo.lib.combine import balance, broadcast, join, merge, split, zip
from mimo.lib.sinks import collect, for_each, to_file
from mimo.lib.sources import file_lines, from_async_iterable, from_iterable, range
from mimo.lib.transforms import batch, filter, flat_map, map, rate_limit, unbatch
from mimo.lib.windows import Clock as Clock
from mimo.lib.windows import ManualClock as ManualClock
from mimo.lib.windows import Window as Window
from mimo.lib.windows import session, sliding, tumbling

__all__ = [
    "balance",
    "batch",
    "broadcast",
    "collect",
    "file_lines",
    "filter",
    "flat_map",
    "for_each",
    "from_async_iterable",
    "from_iterable",
    "join",
    "map",
    "merge",
    "range",
    "rate_limit",
    "session",
    "sliding",
    "split",
    "to_file",
    "tumbling",
    "unbatch",
    "zip",
]
