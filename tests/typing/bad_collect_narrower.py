"""A chain does not collect into a list of an unrelated or narrower item type."""

from mimo import lib

names: list[str] = []
flags: list[bool] = []
(lib.range(1, 4) | lib.collect(names)).run()  # E: mypy=arg-type pyright=reportOperatorIssue
(lib.range(1, 4) | lib.collect(flags)).run()  # E: mypy=arg-type pyright=reportOperatorIssue
