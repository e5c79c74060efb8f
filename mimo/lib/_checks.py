"""Argument checks shared by the stock streams: everything is checked when a stream is made.

Each check names the stream kind (``owner``) and the argument, so a wrong
argument fails at the line that made the stream, never in the middle of a run.
"""

from __future__ import annotations

import codecs
import os
from typing import Any


def check_path(owner: str, path: object) -> None:
    """``path`` names a file: a ``str`` or an ``os.PathLike``, never a file descriptor."""
    if isinstance(path, bool | int):
        # open() takes an int as a file descriptor, and closes it afterwards: stdout, say.
        raise TypeError(
            f"{owner}(): path must be a file name (a str or os.PathLike), not {path!r}; "
            "file descriptors are not taken, since the stream closes the file it opens"
        )
    if not isinstance(path, str | bytes | os.PathLike):
        raise TypeError(f"{owner}(): path must be a file name (a str or os.PathLike), not {path!r}")
    if not os.fspath(path):
        raise ValueError(f"{owner}(): path must not be empty")


def check_encoding(owner: str, encoding: object) -> None:
    """``encoding`` names a text codec Python knows."""
    if not isinstance(encoding, str):
        raise TypeError(f"{owner}(): encoding must be a str, not {encoding!r}")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ValueError(f"{owner}(): unknown encoding {encoding!r}") from None


def check_flag(owner: str, arg: str, value: Any) -> None:
    """``value`` is ``True`` or ``False``, not merely something with a truth value."""
    if not isinstance(value, bool):
        raise TypeError(f"{owner}(): {arg} must be True or False, not {value!r}")


def check_str(owner: str, arg: str, value: Any) -> None:
    """``value`` is a ``str``."""
    if not isinstance(value, str):
        raise TypeError(f"{owner}(): {arg} must be a str, not {value!r}")
