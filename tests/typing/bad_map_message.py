"""lib.map with a function of the wrong input type: mypy names the signature the user wrote."""

from mimo import lib


def parse(text: str) -> int:
    return int(text)


async def fetch(text: str) -> int:
    return int(text)


got: list[int] = []
(lib.range(1, 4).then(lib.map(parse)) | lib.collect(got)).run()  # E: mypy=arg-type pyright=reportArgumentType
(lib.range(1, 4) | lib.map(parse) | lib.collect(got)).run()  # E: mypy=arg-type pyright=reportOperatorIssue
(lib.range(1, 4).then(lib.map(fetch)) | lib.collect(got)).run()  # E: mypy=arg-type pyright=reportArgumentType
