"""The typed DSL: ``@stream``, ``In`` / ``Out``, ``|`` and ``>>``.

.. code-block:: python

    from mimo import stream, In, Out

    @stream
    async def shout(text: In[str], loud: Out[str]) -> None:
        async for t in text:
            await loud.push(t.upper())

    (words | shout | printer).run()
    split.out["evens"] >> merge.in_["left"]

The DSL only builds graphs (:class:`mimo._graph.Graph`); they run on the same
runtime as :class:`~mimo.Workflow`, and convert to and from one.
"""

from mimo.dsl._build import (
    Accepts,
    Closed,
    Dynamic,
    Flow,
    InPorts,
    InRef,
    Joinable,
    OutPorts,
    OutRef,
    Runnable,
    Sink,
    Source,
    Stage,
)
from mimo.dsl._decorator import (
    DslStream,
    In,
    Out,
    PortStream,
    SinkStream,
    SourceStream,
    StageStream,
    stream,
)

__all__ = [
    "Accepts",
    "Closed",
    "DslStream",
    "Dynamic",
    "Flow",
    "In",
    "InPorts",
    "InRef",
    "Joinable",
    "Out",
    "OutPorts",
    "OutRef",
    "PortStream",
    "Runnable",
    "Sink",
    "SinkStream",
    "Source",
    "SourceStream",
    "Stage",
    "StageStream",
    "stream",
]
