"""Running a graph somewhere other than the current event loop.

:class:`RayExecutor` runs a workflow on Ray (``pip install "mimo[ray]"``):
``workflow.run(executor=RayExecutor())``. Ray is imported only when a run
starts, so importing this module does not need it.
"""

from mimo._public import publish as _publish
from mimo.executors._edges import EdgeError, estimate_size
from mimo.executors._ray import PlacementError, RayExecutor, RemoteTraceback, StreamDiedError

__all__ = ["EdgeError", "PlacementError", "RayExecutor", "RemoteTraceback", "StreamDiedError", "estimate_size"]

# Public classes and functions say they are mimo.executors', in reprs, tracebacks and pickles.
for _name in __all__:
    _publish(globals()[_name], __name__)
del _name
