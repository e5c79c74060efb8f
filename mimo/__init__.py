"""mimo: multi-input, multi-output async streaming with bounded queues.

Streams with named input and output ports are joined into a :class:`Workflow`;
every join is a bounded queue, so memory stays bounded however much flows.
"""

from typing import TYPE_CHECKING

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
from mimo._runtime import run_together
from mimo._stream import Stream
from mimo._supervision import Restart, Stop
from mimo._window import Window
from mimo._workflow import Step, Workflow

__all__ = [
    "Channel",
    "ChannelStatistics",
    "ConsumersGone",
    "Dashboard",
    "DeadlockError",
    "EndOfStream",
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

if TYPE_CHECKING:
    from mimo._dashboard import Dashboard
    from mimo.dsl import In, Out, stream
else:

    def __getattr__(name: str) -> object:
        # The DSL loads on first use, so that `import mimo` stays quick.
        if name in ("In", "Out", "stream"):
            from mimo import dsl

            return getattr(dsl, name)
        if name == "Dashboard":
            # aiohttp is imported only when a dashboard is served; this module, on first use.
            from mimo._dashboard import Dashboard

            return Dashboard
        raise AttributeError(f"module 'mimo' has no attribute {name!r}")
