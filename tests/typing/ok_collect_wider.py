"""An int chain collects into a list of a wider item type: the list is only written to."""

from mimo import lib

amounts: list[float] = []
anything: list[object] = []
optional: list[int | None] = []
(lib.range(1, 4) | lib.collect(amounts)).run()
(lib.range(1, 4) | lib.collect(anything)).run()
(lib.range(1, 4) | lib.collect(optional)).run()
floats = lib.range(1, 4).then(lib.map(float)) | lib.collect(amounts)
