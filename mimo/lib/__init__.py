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
* :mod:`~mimo.lib.select`: :func:`take`, :func:`skip`, :func:`take_while`,
  :func:`drop_while`, :func:`distinct`.
* :mod:`~mimo.lib.aggregate`: :func:`scan`, :func:`reduce`.
* :mod:`~mimo.lib.timing`: :func:`timeout`, :func:`debounce`.
* :mod:`~mimo.lib.routing`: :func:`chain`, :func:`zip_latest`,
  :func:`partition` (by :func:`stable_hash`).
* :mod:`~mimo.lib.advanced`: :func:`switch_map`.
* :mod:`~mimo.lib.buffers`: :func:`buffer`.
* :mod:`~mimo.lib.windows`: :func:`tumbling`, :func:`sliding`, :func:`session`,
  pushing :class:`Window` objects (also here, with :class:`ManualClock` for tests).

A single input port is called ``inp`` and a single output ``out``.
"""

from mimo.lib.advanced import switch_map
from mimo.lib.aggregate import reduce, scan
from mimo.lib.buffers import buffer
from mimo.lib.combine import balance, broadcast, join, merge, split, zip
from mimo.lib.routing import chain, partition, stable_hash, zip_latest
from mimo.lib.select import distinct, drop_while, skip, take, take_while
from mimo.lib.sinks import collect, for_each, to_file
from mimo.lib.sources import file_lines, from_async_iterable, from_iterable, range
from mimo.lib.timing import debounce, timeout
from mimo.lib.transforms import batch, filter, flat_map, map, rate_limit, unbatch
from mimo.lib.windows import Clock as Clock
from mimo.lib.windows import ManualClock as ManualClock
from mimo.lib.windows import Window as Window
from mimo.lib.windows import session, sliding, tumbling

__all__ = [
    "balance",
    "batch",
    "broadcast",
    "buffer",
    "chain",
    "collect",
    "debounce",
    "distinct",
    "drop_while",
    "file_lines",
    "filter",
    "flat_map",
    "for_each",
    "from_async_iterable",
    "from_iterable",
    "join",
    "map",
    "merge",
    "partition",
    "range",
    "rate_limit",
    "reduce",
    "scan",
    "session",
    "skip",
    "sliding",
    "split",
    "stable_hash",
    "switch_map",
    "take",
    "take_while",
    "timeout",
    "to_file",
    "tumbling",
    "unbatch",
    "zip",
    "zip_latest",
]

# stable_hash is defined in a private module; it says it is mimo.lib's.
from mimo._public import publish as _publish

_publish(stable_hash, __name__)
