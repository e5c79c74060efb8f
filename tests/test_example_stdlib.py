"""The standard-library tokens example: its findings against counts computed here directly."""

from __future__ import annotations

import importlib.util
import io
import keyword
import re
import shutil
import subprocess
import sys
import tokenize
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "stdlib_tokens.py"

_spec = importlib.util.spec_from_file_location("stdlib_tokens", EXAMPLE)
assert _spec is not None and _spec.loader is not None
example = importlib.util.module_from_spec(_spec)
sys.modules["stdlib_tokens"] = example  # dataclasses look their module up
_spec.loader.exec_module(example)

PACKAGES = ("json", "email", "tomllib")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three real standard-library packages, plus files that cannot be read or tokenized."""
    root = tmp_path_factory.mktemp("stdlib")
    for name in PACKAGES:
        shutil.copytree(example.STDLIB / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    bad = root / "bad"
    bad.mkdir()
    (bad / "cookie.py").write_bytes(b"# -*- coding: no-such-codec -*-\nx = 1\n")
    (bad / "latin.py").write_bytes(b"s = '\xe9t\xe9'\n")  # not UTF-8, and no declaration
    (bad / "open_string.py").write_text('x = """never closed\n')
    (bad / "dedent.py").write_text("if x:\n        a = 1\n    b = 2\n")
    installed = root / "site-packages"
    installed.mkdir()
    (installed / "third_party.py").write_text("ignored = True\n")
    return root


def direct_counts(root: Path) -> dict[str, object]:
    """What the example should find, computed with a plain loop."""
    names: Counter[str] = Counter()
    words: Counter[str] = Counter()
    strings: list[tuple[int, str, str]] = []
    ncomments = nfiles = 0
    failures = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if "site-packages" in rel.parts:
            continue
        try:
            raw = path.read_bytes()
            encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
            text = raw.decode(encoding)
            toks = list(tokenize.generate_tokens(io.StringIO(text).readline))
        except (SyntaxError, UnicodeDecodeError, tokenize.TokenError):
            failures.append(str(rel))
            continue
        nfiles += 1
        for t in toks:
            if t.type == tokenize.NAME and not keyword.iskeyword(t.string):
                names[t.string] += 1
            elif t.type == tokenize.STRING:
                strings.append((len(t.string), str(rel), t.string))
            elif t.type == tokenize.COMMENT:
                ncomments += 1
                words.update(re.findall(r"[a-z]+(?:'[a-z]+)?", t.string.lower()))
    return {
        "files": nfiles,
        "names": names,
        "strings": strings,
        "comments": ncomments,
        "words": words,
        "failures": failures,
    }


@pytest.fixture(scope="module")
def run(corpus: Path):
    found: list = []
    wf = example.build(corpus, echo=False, found=found)
    report = wf.run(capacity=4)
    assert len(found) == 1
    return wf, report, found[0], direct_counts(corpus)


@pytest.mark.timeout(60)
def test_every_file_is_tokenized_or_reported_as_a_failure(run):
    _, report, summary, expected = run
    assert summary.names.files == expected["files"] > 30
    assert sorted(path for path, _ in summary.failures) == expected["failures"]
    assert [p for p, _ in summary.failures] == [
        "bad/cookie.py",
        "bad/dedent.py",
        "bad/latin.py",
        "bad/open_string.py",
    ]
    assert report["read"].items_in["path"] == expected["files"] + len(expected["failures"])


def test_most_common_names_match_a_direct_count(run):
    _, _, summary, expected = run
    names: Counter[str] = expected["names"]
    assert summary.names.total == names.total()
    assert summary.names.distinct == len(names)
    assert [n for _, n in summary.names.most_common] == [n for _, n in names.most_common(10)]
    for name, n in summary.names.most_common:
        assert names[name] == n


def test_longest_strings_match_a_direct_search(run):
    _, _, summary, expected = run
    strings = expected["strings"]
    assert summary.strings.total == len(strings)
    top = sorted(strings, reverse=True)[:3]
    assert [(n, p) for n, p, _ in summary.strings.longest] == [(n, p) for n, p, _ in top]
    assert all(text.startswith(start) for (_, _, start), (_, _, text) in zip(summary.strings.longest, top))


def test_comment_word_counts_match_a_direct_count(run):
    _, _, summary, expected = run
    words: Counter[str] = expected["words"]
    assert summary.comments.comments == expected["comments"]
    assert summary.comments.words == words.total()
    for word, n in summary.comments.most_common:
        assert words[word] == n
    assert [n for _, n in summary.comments.most_common] == [n for _, n in words.most_common(10)]


def test_failures_say_what_went_wrong(run):
    _, _, summary, _ = run
    why = dict(summary.failures)
    assert "no-such-codec" in why["bad/cookie.py"]
    assert why["bad/latin.py"].startswith("SyntaxError")  # no declaration, not UTF-8
    # The tokenizer's own complaints; their class differs between Python versions.
    assert why["bad/open_string.py"].split(":")[0] in {"TokenError", "SyntaxError"}
    assert why["bad/dedent.py"].split(":")[0] in {"TokenError", "IndentationError", "SyntaxError"}


def test_the_graph_fans_out_fans_in_and_the_report_counts_each_join(run):
    wf, report, _, expected = run
    joins = {str(e) for e in wf.graph.edges}
    assert {"read.failed -> failures.failed", "tokens.failed -> failures.failed"} <= joins
    assert {
        f"tokens.{k} -> {s}.{k}"
        for k, s in [("names", "count_names"), ("strings", "longest_strings"), ("comments", "count_comment_words")]
    } <= joins
    assert report["tokens"].items_out["names"] == expected["files"]
    assert report["failures"].items_in["failed"] == len(expected["failures"])
    assert report["summary"].items_in == {"names": 1, "strings": 1, "comments": 1, "failed": 1}
    assert report.capacity == 4


@pytest.mark.timeout(60)
def test_the_script_prints_the_summary_and_the_report(corpus):
    r = subprocess.run(
        [sys.executable, str(EXAMPLE), "--root", str(corpus / "json"), "--progress"],
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert r.returncode == 0, r.stderr
    nfiles = len(list((corpus / "json").glob("*.py")))
    assert r.stdout.startswith(f"{nfiles} files tokenized; 0 could not be\n")
    assert "stdlib_tokens ran" in r.stdout and "bottleneck" in r.stdout
    assert "[stdlib_tokens" in r.stderr  # plain progress lines: stderr is not a terminal here


@pytest.mark.timeout(60)
def test_mimo_check_accepts_the_example():
    r = subprocess.run([sys.executable, "-m", "mimo", "check", str(EXAMPLE)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("stdlib_tokens: ok (8 streams, 11 joins, 0 warnings)")
