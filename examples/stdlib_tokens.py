"""The tokens of Python's own standard library, streamed through a mimo graph.

Reads every ``.py`` file of the running Python's standard library, tokenizes
it, splits the tokens by kind and sends each kind to its own sink; one
summary stream gathers what the sinks found::

    files -> read -+-> tokens -+-> names ----> count_names ------+
                   |           +-> strings --> longest_strings --+
                   |           +-> comments -> comment_words ----+-> summary
                   +-----------+-> failed ---> failures ---------+

``read`` and ``tokens`` both send files they cannot handle to ``failures``
(fan-in); ``tokens`` feeds four streams (fan-out); ``summary`` waits on four
inputs. Tokenizing is the slow step, so ``read`` is held back by the bounded
queue in front of it (back-pressure): the report names ``tokens`` as the
bottleneck.

    python examples/stdlib_tokens.py --progress
    mimo run examples/stdlib_tokens.py --progress
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import keyword
import re
import sys
import sysconfig
import tokenize
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mimo import In, Out, RunReport, Workflow, stream

#: The standard library of the Python running this file.
STDLIB = Path(sysconfig.get_paths()["stdlib"])

Failure = tuple[str, str]  # (path, what went wrong)
Source = tuple[str, str]  # (path, text)

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


# -- plain functions: the work itself, also used by the tests to check the graph --


def python_files(root: Path, limit: int = 0) -> Iterator[Path]:
    """The ``.py`` files under ``root`` in a stable order, without installed packages."""
    found = 0
    for path in sorted(root.rglob("*.py")):
        if {"site-packages", "dist-packages"} & set(path.relative_to(root).parts):
            continue
        yield path
        found += 1
        if limit and found >= limit:
            return


def read_source(path: Path) -> str:
    """The text of a Python file, decoded as its encoding declaration says."""
    with tokenize.open(path) as f:
        return f.read()


@dataclass
class Kinds:
    """One file's tokens, split by kind."""

    names: list[str]
    strings: list[str]
    comments: list[str]


def split_tokens(text: str) -> Kinds:
    """Tokenize ``text``: identifiers (not keywords), string literals and comments."""
    kinds = Kinds([], [], [])
    lines = iter(text.splitlines(keepends=True))
    for tok in tokenize.generate_tokens(lambda: next(lines, "")):
        if tok.type == tokenize.NAME and not keyword.iskeyword(tok.string):
            kinds.names.append(tok.string)
        elif tok.type == tokenize.STRING:
            kinds.strings.append(tok.string)
        elif tok.type == tokenize.COMMENT:
            kinds.comments.append(tok.string)
    return kinds


def comment_words(comment: str) -> list[str]:
    """The words of a comment, lower-cased."""
    return _WORD.findall(comment.lower())


# -- what the sinks find ---------------------------------------------------------


@dataclass(frozen=True)
class NameCounts:
    """What ``count_names`` found: files seen, identifiers in all, and the most common."""

    files: int
    total: int
    distinct: int
    most_common: list[tuple[str, int]]


@dataclass(frozen=True)
class LongStrings:
    """What ``longest_strings`` found: string literals in all, and the longest."""

    total: int
    longest: list[tuple[int, str, str]]  # (length, path, start of the literal)


@dataclass(frozen=True)
class CommentWords:
    """What ``count_comment_words`` found: comments, their words, and the most common."""

    comments: int
    words: int
    most_common: list[tuple[str, int]]


@dataclass(frozen=True)
class Summary:
    """Everything the run found."""

    names: NameCounts
    strings: LongStrings
    comments: CommentWords
    failures: list[Failure]

    def __str__(self) -> str:
        n, s, c = self.names, self.strings, self.comments
        lines = [
            f"{n.files:,} files tokenized; {len(self.failures)} could not be",
            f"names: {n.total:,} ({n.distinct:,} distinct); most common: "
            + ", ".join(f"{w} {k:,}" for w, k in n.most_common),
            f"strings: {s.total:,}; the longest:",
            *(f"  {length:>7,} chars  {path}  {start}" for length, path, start in s.longest),
            f"comments: {c.comments:,} with {c.words:,} words; most common: "
            + ", ".join(f"{w} {k:,}" for w, k in c.most_common),
            "could not tokenize:" + ("" if self.failures else " none"),
            *(f"  {path}: {why}" for path, why in self.failures),
        ]
        return "\n".join(lines)


# -- the streams -----------------------------------------------------------------


@stream
async def files(path: Out[Path], *, root: str = str(STDLIB), limit: int = 0) -> None:
    """Every ``.py`` file under ``root`` (the first ``limit`` if given)."""
    for p in python_files(Path(root), limit):
        await path.push(p)


@stream
async def read(path: In[Path], source: Out[Source], failed: Out[Failure], *, root: str = str(STDLIB)) -> None:
    """Each file's text; files that cannot be decoded go to ``failed``."""
    async for p in path:
        shown = str(p.relative_to(root))
        try:
            text = read_source(p)  # quick next to tokenizing; a thread would only compete for the GIL
        except (SyntaxError, UnicodeDecodeError, OSError) as exc:
            await failed.push((shown, f"{type(exc).__name__}: {exc}".replace(str(p), shown)))
        else:
            await source.push((shown, text))


@stream
async def tokens(
    source: In[Source],
    names: Out[list[str]],
    strings: Out[tuple[str, list[str]]],
    comments: Out[list[str]],
    failed: Out[Failure],
) -> None:
    """Split each file's tokens by kind; files that fail to tokenize go to ``failed``."""
    async for path, text in source:
        try:
            # In a thread, so that the event loop (and the progress view) stays lively.
            kinds = await asyncio.to_thread(split_tokens, text)
        except (tokenize.TokenError, SyntaxError) as exc:
            await failed.push((path, f"{type(exc).__name__}: {exc}"))
            continue
        await names.push(kinds.names)
        await strings.push((path, kinds.strings))
        await comments.push(kinds.comments)


@stream
async def count_names(names: In[list[str]], result: Out[NameCounts], *, top: int = 10) -> None:
    """The most common identifiers."""
    counts: Counter[str] = Counter()
    nfiles = 0
    async for batch in names:
        nfiles += 1
        counts.update(batch)
    await result.push(NameCounts(nfiles, counts.total(), len(counts), counts.most_common(top)))


@stream
async def longest_strings(strings: In[tuple[str, list[str]]], result: Out[LongStrings], *, top: int = 3) -> None:
    """The longest string literals, and where they are."""
    longest: list[tuple[int, str, str]] = []
    total = 0
    async for path, batch in strings:
        total += len(batch)
        for s in batch:
            item = (len(s), path, s[:40].split("\n")[0])
            if len(longest) < top:
                heapq.heappush(longest, item)
            elif item > longest[0]:
                heapq.heapreplace(longest, item)
    await result.push(LongStrings(total, sorted(longest, reverse=True)))


@stream
async def count_comment_words(comments: In[list[str]], result: Out[CommentWords], *, top: int = 10) -> None:
    """How many comments, how many words in them, and the most common words."""
    words: Counter[str] = Counter()
    ncomments = 0
    async for batch in comments:
        ncomments += len(batch)
        for c in batch:
            words.update(comment_words(c))
    await result.push(CommentWords(ncomments, words.total(), words.most_common(top)))


@stream
async def failures(failed: In[Failure], result: Out[list[Failure]]) -> None:
    """Every file that could not be read or tokenized, in path order."""
    await result.push(sorted([f async for f in failed]))


@stream
async def summary(
    names: In[NameCounts],
    strings: In[LongStrings],
    comments: In[CommentWords],
    failed: In[list[Failure]],
    *,
    echo: bool = True,
    found: list[Summary] | None = None,
) -> None:
    """Gather the four results into one :class:`Summary` (printed if ``echo``)."""
    result = Summary(await names.pop(), await strings.pop(), await comments.pop(), await failed.pop())
    if found is not None:
        found.append(result)
    if echo:
        print(result)


def build(
    root: str | Path = STDLIB,
    limit: int = 0,
    *,
    echo: bool = True,
    found: list[Summary] | None = None,
) -> Workflow:
    """The graph over the ``.py`` files under ``root``; the summary is appended to ``found``."""
    root = str(root)
    src, rd, tok = files(root=root, limit=limit), read(root=root), tokens()
    names, strings, comments, fails = count_names(), longest_strings(), count_comment_words(), failures()
    end = summary(echo=echo, found=found)

    src.out["path"] >> rd.in_["path"]
    rd.out["source"] >> tok.in_["source"]
    tok.out["names"] >> names.in_["names"]
    tok.out["strings"] >> strings.in_["strings"]
    tok.out["comments"] >> comments.in_["comments"]
    rd.out["failed"] >> fails.in_["failed"]
    tok.out["failed"] >> fails.in_["failed"]
    names.out["result"] >> end.in_["names"]
    strings.out["result"] >> end.in_["strings"]
    comments.out["result"] >> end.in_["comments"]
    flow = fails.out["result"] >> end.in_["failed"]
    return flow.workflow("stdlib_tokens")


def email_only() -> Workflow:
    """The same graph over the standard library's ``email`` package alone: a run of a second."""
    return build(STDLIB / "email")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--progress", action="store_true", help="show the run live (on standard error)")
    parser.add_argument("--capacity", type=int, help="bound of every queue (default: 64)")
    parser.add_argument("--root", default=str(STDLIB), help="read the .py files under this folder instead")
    parser.add_argument("--limit", type=int, default=0, help="read only the first N files")
    parser.add_argument("--graph", metavar="PATH", help="draw the graph with the run's figures to PATH")
    args = parser.parse_args(argv)
    wf = build(args.root, args.limit)
    report: RunReport = wf.run(capacity=args.capacity, progress=args.progress)
    print()
    print(report)
    if args.graph:
        wf.render(args.graph, report=report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
