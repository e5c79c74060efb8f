"""mimo: multi-input, multi-output async streaming with bounded queues.

Streams with named input and output ports are joined into a :class:`Workflow`;
every join is a bounded queue, so memory stays bounded however much flows.
"""

from mimo._channel import Channel, ChannelStatistics
from mimo._errors import (
    ConsumersGone,
    DeadlockError,
    EndOfStream,
    MimoError,
    PortClosed,
    WorkflowError,
)
from mimo._ports import InputPort, Ins, OutputPort, Outs
from mimo._report import RunReport, StreamReport
from mimo._stream import Stream
from mimo._workflow import Step, Workflow
from mimo.dsl import In, Out, stream

__all__ = [
    "Channel",
    "ChannelStatistics",
    "ConsumersGone",
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
    "RunReport",
    "Step",
    "Stream",
    "StreamReport",
    "Workflow",
    "WorkflowError",
    "stream",
]

__version__ = "0.1.0"
