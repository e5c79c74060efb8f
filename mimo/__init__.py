"""mimo: multi-input, multi-output async streaming with bounded queues.

Streams with named input and output ports are joined into a :class:`Workflow`;
every join is a bounded queue, so memory stays bounded however much flows.
"""

import sys
from typing import TYPE_CHECKING, Any

from mimo._channel import Channel, ChannelStatistics
from mimo._errors import (
    ConsumersGone,
    DeadlockError,
    EndOfStream,
    MimoError,
    PortClosed,
    PushNotAwaited,
    WorkflowError,
    WouldBlock,
)
from mimo._ports import InputPort, Ins, OutputPort, Outs
from mimo._report import RunReport, StreamReport
from mimo._retry import Retry
from mimo._runtime import run_together
from mimo._stream import Stream
from mimo._supervision import Restart, Stop
from mimo._window import Window
from mimo._workflow import Executor, Step, Workflow

__all__ = [
    "Channel",
    "ChannelStatistics",
    "ConsumersGone",
    "Dashboard",
    "DeadlockError",
    "EndOfStream",
    "Executor",
    "In",
    "InputPort",
    "Ins",
    "MimoError",
    "Out",
    "OutputPort",
    "Outs",
    "PortClosed",
    "PushNotAwaited",
    "Restart",
    "Retry",
    "RunReport",
    "Step",
    "Stop",
    "Stream",
    "StreamReport",
    "Window",
    "Workflow",
    "WorkflowError",
    "WouldBlock",
    "run_together",
    "stream",
]

__version__ = "0.1.0"

#: Names loaded on first use, and the module each comes from: the DSL, so that
#: `import mimo` stays quick; the dashboard, whose aiohttp is imported only when one is served.
_LAZY = {"In": "mimo.dsl", "Out": "mimo.dsl", "stream": "mimo.dsl", "Dashboard": "mimo._dashboard"}

if TYPE_CHECKING:
    from mimo._dashboard import Dashboard
    from mimo.dsl import In, Out, stream
else:

    def __getattr__(name: str) -> object:
        if name in _LAZY:
            import importlib

            value = getattr(importlib.import_module(_LAZY[name]), name)
            _publish(value)
            globals()[name] = value
            return value
        raise AttributeError(f"module 'mimo' has no attribute {name!r}")


def __dir__() -> list[str]:
    # The lazy names too, before their first use (for completion and autodoc).
    return sorted({*globals(), *__all__})


def _publish(value: Any) -> None:
    """Make ``value`` say it is mimo's (`mimo.EndOfStream`, not `mimo._errors.EndOfStream`).

    Reprs, tracebacks and pickles then use the public name, which resolves here,
    so pickling by reference (as Ray does with a stream's exception) still works.
    """
    if value.__module__ == __name__:  # In and Out are InputPort and OutputPort, done already
        return
    if isinstance(value, type):
        # typing.get_type_hints evaluates a class's string annotations among the
        # names of its __module__: evaluate them now, among those of their own module.
        own = value.__dict__.get("__annotations__", {})  # noqa: RUF063 (changed in place)
        home = vars(sys.modules[value.__module__])
        for key, annotation in list(own.items()):
            if isinstance(annotation, str):
                try:
                    own[key] = eval(annotation, home, dict(vars(value)))
                except Exception:  # a name imported only for type checkers: left as it was
                    pass
    value.__module__ = __name__


for _name in __all__:
    if _name not in _LAZY:
        _publish(globals()[_name])
del _name
