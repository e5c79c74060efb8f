"""A hash of keys that is the same in every run and every process.

Python's ``hash`` of a ``str`` or ``bytes`` is salted per process
(``PYTHONHASHSEED``), so it cannot route a key to the same place across
runs, worker processes or machines. :func:`stable_hash` hashes a canonical
encoding of the value instead.
"""

from __future__ import annotations

import hashlib
import math
import struct

__all__ = ["stable_hash"]

_KINDS = "None, bool, int, float, str, bytes, or a tuple or frozenset of these"


def _encode(value: object, into: list[bytes]) -> None:
    # Each part is tagged and length-prefixed, so no two values share an encoding.
    if value is None:
        into.append(b"N")
    elif isinstance(value, int):  # bool too: True == 1, so they are one key
        _part(into, b"i", str(int(value)).encode())
    elif isinstance(value, float):
        if math.isfinite(value) and value == int(value):
            _part(into, b"i", str(int(value)).encode())  # 2.0 == 2: the same key
        else:
            _part(into, b"f", struct.pack(">d", value) if not math.isnan(value) else b"nan")
    elif isinstance(value, str):
        _part(into, b"s", value.encode("utf-8", "surrogatepass"))
    elif isinstance(value, bytes):
        _part(into, b"b", bytes(value))
    elif isinstance(value, tuple):
        into.append(b"t" + len(value).to_bytes(8, "big"))
        for v in value:
            _encode(v, into)
    elif isinstance(value, frozenset):
        parts = []
        for v in value:
            sub: list[bytes] = []
            _encode(v, sub)
            parts.append(b"".join(sub))
        into.append(b"z" + len(parts).to_bytes(8, "big"))
        into.extend(sorted(parts))  # a set has no order: sort the encodings
    else:
        raise TypeError(
            f"cannot hash a {type(value).__name__} stably: a key must be {_KINDS}, not {value!r}; "
            "give a key function that returns one (str(x), or a tuple of fields)"
        )


def _part(into: list[bytes], tag: bytes, data: bytes) -> None:
    into.append(tag + len(data).to_bytes(8, "big") + data)


def stable_hash(value: object) -> int:
    """A 64-bit hash of ``value``, the same in every run, process and machine.

    ``value`` is ``None``, a ``bool``, ``int``, ``float``, ``str``, ``bytes``,
    or a ``tuple`` / ``frozenset`` of these (nested freely); anything else is
    a ``TypeError``. Values that compare equal hash alike, as with ``hash``
    (``2``, ``2.0`` and, for ``1``, ``True``).
    """
    parts: list[bytes] = []
    _encode(value, parts)
    return int.from_bytes(hashlib.blake2b(b"".join(parts), digest_size=8).digest(), "big")
