"""Stock streams from ``mimo.lib``: two pipelines without a hand-written stream.

1. Word frequencies, a ``|`` chain: the lines of a file, split into words,
   cleaned, filtered, counted in batches on two threads, collected.
2. Numbered lines, joined by port name: ``zip`` pairs line numbers with lines,
   ``split`` sends the lines that mention a river, formatted, to a file and
   the rest to a list.

Run it with ``python examples/lib_pipeline.py``.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

from mimo import lib

TEXT = """\
The river starts as rain on the hills, and the rain finds the stream.
Each stream joins another stream, and the water keeps moving downhill.
Where two rivers meet, the water from both runs on in one bed.
A dam holds the water back; the lake behind it fills, then spills.
The river reaches the sea at last, and the sea sends rain to the hills.
"""


def words(line: str) -> list[str]:
    return line.split()


def clean(word: str) -> str:
    return word.strip(".,;:!?").lower()


def is_long(word: str) -> bool:
    return len(word) > 3


def count(batch: list[str]) -> Counter[str]:
    return Counter(batch)


def mentions_river(numbered: tuple[int, str]) -> bool:
    return "river" in numbered[1].lower()


def show(numbered: tuple[int, str]) -> str:
    return f"{numbered[0]}: {numbered[1]}"


def word_frequencies(path: Path) -> list[tuple[str, int]]:
    """The five most frequent long words of the file at ``path``."""
    counts: list[Counter[str]] = []
    pipeline = (
        lib.file_lines(path)
        | lib.flat_map(words)
        | lib.map(clean)
        | lib.filter(is_long)
        | lib.batch(8)
        | lib.map(count, workers=2, executor="thread")
        | lib.collect(counts)
    )
    pipeline.run()
    total = sum(counts, Counter[str]())
    return sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))[:5]


def river_lines(path: Path, out: Path) -> list[tuple[int, str]]:
    """Write the numbered lines mentioning a river to ``out``; return the others."""
    others: list[tuple[int, str]] = []
    pair = lib.zip(["number", "line"])
    pick = lib.split(mentions_river)
    lib.range(1, 1_000_000).out["out"] >> pair.in_["number"]
    lib.file_lines(path).out["out"] >> pair.in_["line"]
    pair.out["out"] >> pick.in_["inp"]
    pick.out["matched"] >> (shown := lib.map(show)).in_["inp"]
    shown | lib.to_file(out)  # shown already has a place in this graph: | extends it
    flow = pick.out["unmatched"] >> lib.collect(others).in_["inp"]
    flow.run()
    return others


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "water.txt"
        path.write_text(TEXT, encoding="utf-8")
        for word, n in word_frequencies(path):
            print(f"{word:<8}{n}")
        rivers = Path(tmp) / "rivers.txt"
        others = river_lines(path, rivers)
        print("lines about a river:")
        print(rivers.read_text(encoding="utf-8"), end="")
        print(f"other lines: {[n for n, _ in others]}")


if __name__ == "__main__":
    main()
