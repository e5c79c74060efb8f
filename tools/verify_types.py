"""Fail unless pyright finds the types of enough of mimo's public symbols known.

Runs ``pyright --verifytypes mimo --ignoreexternal --outputjson``, prints the
score and each public symbol whose type is not known, and exits 1 when the
score is under the threshold (95% by default; ``--min 1.0`` for all of them).
pyright's own exit status is ignored: it fails on any incomplete symbol.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min", type=float, default=0.95, help="lowest completeness score accepted (0 to 1)")
    parser.add_argument("--package", default="mimo")
    args = parser.parse_args()
    cmd = ["pyright", "--verifytypes", args.package, "--ignoreexternal", "--outputjson"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    try:
        report = json.loads(done.stdout)["typeCompleteness"]
    except (json.JSONDecodeError, KeyError):
        print(f"{' '.join(cmd)} gave no report:\n{done.stdout}{done.stderr}", file=sys.stderr)
        return 2
    score = report["completenessScore"]
    counts = report["exportedSymbolCounts"]
    for symbol in report["symbols"]:
        if symbol["isExported"] and not symbol["isTypeKnown"]:
            first = next((d["message"] for d in symbol["diagnostics"] if d["severity"] == "error"), "")
            print(f"  {symbol['name']}: {first.splitlines()[0] if first else 'type not known'}")
    print(
        f"pyright --verifytypes {args.package}: {score:.1%} of public symbols with known types "
        f"({counts['withKnownType']} known, {counts['withAmbiguousType']} ambiguous, "
        f"{counts['withUnknownType']} unknown); at least {args.min:.0%} required"
    )
    return 0 if score >= args.min else 1


if __name__ == "__main__":
    sys.exit(main())
