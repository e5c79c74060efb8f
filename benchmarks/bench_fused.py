"""A fused chain against the hand-written generator chain doing the same work.

``lib.range(n) | lib.map(inc) | lib.filter(keep) | lib.map(dbl) | lib.collect()``
(the DSL; fused into one loop by the runtime) against the sync floor's chain of
plain ``def`` generators (benchmarks/README.md): a source generator, one
generator per stage calling the same three functions, and a ``for`` loop
appending to a list. The same chain with fusion off (``MIMO_NO_FUSION=1``, each
stream a task) is timed too. CPU time of this process; each round times every
variant once, in turn, and the ratios are taken within a round; the median
over rounds is printed. The generator chain with the work written inline
(``yield x + 1``, no function call) is shown too, for reference.

    python benchmarks/bench_fused.py [--budget 0.5] [--rounds 5] [--items N] [--json]

The last line with ``--json`` is a JSON object; ``ratio`` is fused / generator
chain (the target of issue 13 is at most 2).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator


def inc(x: int) -> int:
    return x + 1


def keep(x: int) -> bool:
    return x % 3 != 0


def dbl(x: int) -> int:
    return x * 2


def expected(n: int) -> list[int]:
    return [dbl(y) for y in (inc(x) for x in range(n)) if keep(y)]


# -- the generator chains ---------------------------------------------------------


def _source(n: int) -> Iterator[int]:
    for i in range(n):  # noqa: UP028
        yield i


def _map(it: Iterator[int], fn: Callable[[int], int]) -> Iterator[int]:
    for x in it:
        yield fn(x)


def _filter(it: Iterator[int], fn: Callable[[int], bool]) -> Iterator[int]:
    for x in it:
        if fn(x):
            yield x


def generators(n: int) -> list[int]:
    out = []
    for x in _map(_filter(_map(_source(n), inc), keep), dbl):
        out.append(x)
    return out


def _inc_inline(it: Iterator[int]) -> Iterator[int]:
    for x in it:
        yield x + 1


def _keep_inline(it: Iterator[int]) -> Iterator[int]:
    for x in it:
        if x % 3 != 0:
            yield x


def _dbl_inline(it: Iterator[int]) -> Iterator[int]:
    for x in it:
        yield x * 2


def generators_inline(n: int) -> list[int]:
    out = []
    for x in _dbl_inline(_keep_inline(_inc_inline(_source(n)))):
        out.append(x)
    return out


# -- mimo --------------------------------------------------------------------------


def mimo_chain(n: int, fused: bool) -> list[int]:
    from mimo import _fuse, lib

    out: list[int] = []
    _fuse.ENABLED = fused
    try:
        (lib.range(n) | lib.map(inc) | lib.filter(keep) | lib.map(dbl) | lib.collect(out)).run()
    finally:
        _fuse.ENABLED = True
    return out


def cpu_per_item(fn: Callable[[int], list[int]], n: int) -> float:
    gc.collect()
    c0 = time.process_time()
    out = fn(n)
    cpu = time.process_time() - c0
    if out != _expected(n):
        raise SystemExit(f"{fn.__name__}: wrong result")
    return cpu / n


_EXPECTED: dict[int, list[int]] = {}


def _expected(n: int) -> list[int]:
    if n not in _EXPECTED:
        _EXPECTED[n] = expected(n)
    return _EXPECTED[n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget", type=float, default=0.5, help="CPU seconds for the fused run (sets the items)")
    ap.add_argument("--rounds", type=int, default=5, help="paired rounds (median of their ratios)")
    ap.add_argument("--items", type=int, default=0, help="items per run (default: from --budget)")
    ap.add_argument("--json", action="store_true", help="end with one JSON line")
    args = ap.parse_args()
    if os.environ.get("MIMO_NO_FUSION"):
        print("MIMO_NO_FUSION is set: the fused figure would be the unfused one", file=sys.stderr)
    fused_per_item = cpu_per_item(lambda k: mimo_chain(k, True), 50_000)  # the first run imports mimo
    fused_per_item = cpu_per_item(lambda k: mimo_chain(k, True), 50_000)
    n = args.items or max(10_000, int(args.budget / max(fused_per_item, 1e-9)))
    n_unfused = max(1_000, n // 10)  # about ten times slower: fewer items, compared per item
    variants: dict[str, tuple[Callable[[int], list[int]], int]] = {
        "generators": (generators, n),
        "generators_inline": (generators_inline, n),
        "fused": (lambda k: mimo_chain(k, True), n),
        "unfused": (lambda k: mimo_chain(k, False), n_unfused),
    }
    for fn, k in variants.values():  # warm up: imports, caches
        fn(min(k, 10_000))
    per_item: dict[str, list[float]] = {name: [] for name in variants}
    ratios: dict[str, list[float]] = {"fused": [], "unfused": [], "fused_vs_inline": []}
    for _ in range(args.rounds):
        this = {name: cpu_per_item(fn, k) for name, (fn, k) in variants.items()}
        for name, v in this.items():
            per_item[name].append(v)
        ratios["fused"].append(this["fused"] / this["generators"])
        ratios["unfused"].append(this["unfused"] / this["generators"])
        ratios["fused_vs_inline"].append(this["fused"] / this["generators_inline"])
    med = {name: statistics.median(v) * 1e9 for name, v in per_item.items()}
    ratio = {name: statistics.median(v) for name, v in ratios.items()}
    print(f"range | map | filter | map | collect, {n} items ({n_unfused} unfused), {args.rounds} rounds, CPU time")
    print(f"  generator chain (same functions)   {med['generators']:7.0f} ns/item")
    print(f"  generator chain (work inline)      {med['generators_inline']:7.0f} ns/item")
    print(f"  mimo fused                         {med['fused']:7.0f} ns/item")
    print(f"  mimo unfused (MIMO_NO_FUSION=1)    {med['unfused']:7.0f} ns/item")
    print(f"fused chain: {ratio['fused']:.2f}x the generator chain (target <= 2x)")
    print(f"  (unfused: {ratio['unfused']:.1f}x; fused vs the inline generator chain: {ratio['fused_vs_inline']:.2f}x)")
    if args.json:
        result = {
            "ratio": round(ratio["fused"], 3),
            "ratio_unfused": round(ratio["unfused"], 3),
            "ratio_vs_inline": round(ratio["fused_vs_inline"], 3),
            "ns_per_item": {k: round(v, 1) for k, v in med.items()},
            "items": n,
            "rounds": args.rounds,
            "python": sys.version.split()[0],
        }
        print(json.dumps(result))


if __name__ == "__main__":
    main()
