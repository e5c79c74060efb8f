"""mimo: multi-input, multi-output async streaming with bounded queues.

Streams with named input and output ports are joined into a :class:`Workflow`;
every join is a bounded queue, so memory stays bounded however much flows.
"""

from typing import TYPE_CHECKING

from mimo._channel import Channel, ChannelStatistics
from mimo._checkpoint import CheckpointError
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
from mimo._public import publish as _publish
from mimo._report import RunReport, StreamReport
from mimo._retry import Retry
from mimo._runtime import run_together
from mimo._store import CheckpointStore, SavedCheckpoint, SQLiteStore
from mimo._stream import Stream
from mimo._supervision import Restart, Stop
from mimo._window import Window
from mimo._workflow import Executor, Step, Workflow

__all__ = [
    "Channel",
    "ChannelStatistics",
    "CheckpointError",
    "CheckpointStore",
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
    "SQLiteStore",
    "SavedCheckpoint",
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
            _publish(value, __name__)
            globals()[name] = value
            return value
        raise AttributeError(f"module 'mimo' has no attribute {name!r}")


def __dir__() -> list[str]:
    # The lazy names too, before their first use (for completion and autodoc).
    return sorted({*globals(), *__all__})


# Public classes and functions say they are mimo's, in reprs, tracebacks and pickles.
for _name in __all__:
    if _name not in _LAZY:
        _publish(globals()[_name], __name__)
del _name
