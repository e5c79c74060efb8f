"""The exceptions mimo raises. All derive from :class:`MimoError`."""

from __future__ import annotations


class MimoError(Exception):
    """Base class of every error mimo raises."""


class WorkflowError(MimoError):
    """The graph is wrong: an unknown or ambiguous port, a duplicate, a bad join.

    Raised while the graph is built, before any stream runs.
    """


class EndOfStream(MimoError):
    """An input port is closed and drained: no item will ever come.

    Not an error condition. Escaping a stream's ``run`` it ends that stream
    cleanly, so ``while True: x = await ins.x.pop()`` is a complete loop.
    """


class PortClosed(MimoError):
    """A push on an output port (or a :class:`~mimo.Channel`) that is closed.

    Also raised into a push that is waiting for room when its output is closed.
    """


class PushNotAwaited(MimoError):
    """A ``push(...)`` or ``push_many(...)`` on an output port was not awaited.

    Raised by the next push, push_many or close of that output, and when the
    stream's body returns with the push still not awaited: a push that is not
    awaited may never deliver its item.
    """


class WouldBlock(MimoError):
    """A ``*_nowait`` call found nothing to take: no item is buffered yet.

    Its own class, so that ``except WouldBlock`` never swallows a ``KeyError``.
    """


class ConsumersGone(MimoError):
    """Every consumer of every connected output of this stream has finished.

    Raised by ``push``; nobody will read what the stream produces. Escaping the
    stream's ``run`` it ends the stream quietly, like :class:`EndOfStream`.
    """


class DeadlockError(MimoError):
    """Every live stream waits on a mimo port and none can move.

    The message says which stream waits on which port, and why.
    """


#: Exceptions that end a stream cleanly when they escape its ``run``.
CLEAN_EXITS = (EndOfStream, ConsumersGone)


def unknown_name(owner: str, kind: str, name: str, names: list[str]) -> str:
    """ "OWNER has no KIND 'name'", with the closest name or the list of names."""
    if not isinstance(name, str):
        # Raised here, before difflib fails on it with a message naming nothing.
        article = "an" if kind[:1] in "aeiou" else "a"
        raise TypeError(f"{owner}: {article} {kind} name must be a str, not {name!r}")
    msg = f"{owner} has no {kind} {name!r}"
    import difflib  # only on this error path: it is slow to import

    close = difflib.get_close_matches(name, names, n=1)
    if close:
        return msg + f"; did you mean {close[0]!r}?"
    if names:
        return msg + f" (its {kind}s: {', '.join(repr(n) for n in names)})"
    return msg + f" (it has no {kind}s)"


def name_error(exc: BaseException, name: str) -> None:
    """Name the stream on ``exc`` where it lets us; never replace or change its type.

    An exception may refuse new attributes (a frozen dataclass, a
    ``__setattr__`` that raises, or a ``__notes__`` that is not a list): the
    naming is then skipped, and the user's exception goes out as it is.
    """
    note = f"in mimo stream {name!r}"
    try:
        exc.mimo_stream = name  # type: ignore[attr-defined]
    except Exception:
        pass
    try:
        if not any(n == note for n in getattr(exc, "__notes__", ())):
            exc.add_note(note)
    except Exception:
        pass
