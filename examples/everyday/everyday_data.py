"""The shared inputs and checks of the eight everyday tasks (see README.md).

Each task's program is its plumbing only: imports, wiring, running, and handing
the result to its ``check_*`` function, which asserts it and prints a summary.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

_TMP = Path(tempfile.mkdtemp(prefix="mimo-everyday-"))

# -- T1: a file -> strip -> drop empty lines -> count words ------------------------

TEXT = _TMP / "t1.txt"
TEXT.write_text("  the quick brown fox \n\n jumps over\n   \nthe lazy dog\n", encoding="utf-8")


def check_t1(words: list[str]) -> None:
    assert len(words) == 9, words
    print("words:", len(words))


# -- T2: 1,000 fetches, at most 20 at once, results in input order -----------------

URLS = [f"https://example.invalid/{i}" for i in range(1000)]
_in_flight = 0
_peak = 0


async def fetch(url: str) -> int:
    """A simulated fetch: 1-3 ms, jittered so that a wrong order would show."""
    global _in_flight, _peak
    _in_flight += 1
    _peak = max(_peak, _in_flight)
    try:
        await asyncio.sleep(random.uniform(0.001, 0.003))
        return int(url.rsplit("/", 1)[1])
    finally:
        _in_flight -= 1


def check_t2(results: list[int]) -> None:
    assert results == list(range(1000)), results[:10]
    assert _peak == 20, _peak
    print("fetched:", len(results), "peak:", _peak)


# -- T3: one source, two consumers, each its own pipeline --------------------------

NUMBERS = range(100)


def is_even(n: int) -> bool:
    return n % 2 == 0


def square(n: int) -> int:
    return n * n


def check_t3(evens: list[int], squares: list[int]) -> None:
    assert evens == list(range(0, 100, 2)) and squares == [n * n for n in range(100)]
    print("evens:", len(evens), "sum of squares:", sum(squares))


# -- T4: fan-in of two async sources -----------------------------------------------


async def letters() -> AsyncIterator[str]:
    for c in "abcde":
        await asyncio.sleep(0.001)
        yield c


async def digits() -> AsyncIterator[str]:
    for d in "01234":
        await asyncio.sleep(0.001)
        yield d


def check_t4(got: list[str]) -> None:
    assert sorted(got) == sorted("abcde01234"), got
    assert [c for c in got if c.isalpha()] == list("abcde") and [c for c in got if c.isdigit()] == list("01234")
    print("merged:", "".join(got))


# -- T5: split into two sinks, each branch with its own transform ------------------

RECORDS = ["alice,30", "bob,x", " carol,41 ", "", "dave,25"]


def is_valid(record: str) -> bool:
    name, _, age = record.strip().partition(",")
    return bool(name) and age.isdigit()


def clean(record: str) -> str:
    return record.strip().title()


def reason(record: str) -> str:
    return f"rejected {record!r}"


def check_t5(valid: list[str], rejected: list[str]) -> None:
    assert valid == ["Alice,30", "Carol,41", "Dave,25"], valid
    assert rejected == ["rejected 'bob,x'", "rejected ''"], rejected
    print("valid:", len(valid), "rejected:", len(rejected))


# -- T6: batches of 100 or whatever 50 ms gave -> JSON lines -----------------------

OUT = _TMP / "t6.jsonl"


async def irregular() -> AsyncIterator[int]:
    """Bursts of 130, 70, 150 and 5 items, 120 ms apart."""
    i = 0
    for n, burst in enumerate((130, 70, 150, 5)):
        if n:
            await asyncio.sleep(0.12)
        for _ in range(burst):
            yield i
            i += 1


def check_t6() -> None:
    sizes = [len(json.loads(line)) for line in OUT.read_text(encoding="utf-8").splitlines()]
    assert sizes == [100, 30, 70, 100, 50, 5], sizes
    print("batches:", sizes)


# -- T7: sha256 of 2,000 blobs in 4 processes, in order ----------------------------

BLOBS = [i.to_bytes(4, "big") * 256 for i in range(2000)]


def digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def check_t7(digests: list[str]) -> None:
    assert digests == [hashlib.sha256(b).hexdigest() for b in BLOBS]
    print("digests:", len(digests))


# -- T8: a keyed join of orders and payments ---------------------------------------


@dataclass(frozen=True)
class Order:
    id: int
    item: str


@dataclass(frozen=True)
class Payment:
    id: int
    amount: float


async def orders() -> AsyncIterator[Order]:
    for o in (Order(1, "tea"), Order(2, "cake"), Order(3, "jam"), Order(4, "scone")):
        await asyncio.sleep(0.001)
        yield o


async def payments() -> AsyncIterator[Payment]:
    for p in (Payment(2, 3.0), Payment(4, 2.0), Payment(1, 2.5), Payment(9, 1.0)):
        await asyncio.sleep(0.001)
        yield p


def check_t8(pairs: list[tuple[Order, Payment]], unmatched: list[Order | Payment]) -> None:
    assert {(o.id, p.id) for o, p in pairs} == {(1, 1), (2, 2), (4, 4)}, pairs
    assert set(unmatched) == {Order(3, "jam"), Payment(9, 1.0)}, unmatched
    print("pairs:", len(pairs), "unmatched:", len(unmatched))
