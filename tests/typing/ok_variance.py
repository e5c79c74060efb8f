"""Port types are variant: an input port is read from (covariant), an output port written to (contravariant)."""

from mimo import In, InputPort, Out, OutputPort


async def read_any(port: InputPort[object]) -> object:
    return await port.pop()


async def write_ints(port: OutputPort[int]) -> None:
    await port.push(1)


async def reader(ints: In[int], bools: InputPort[bool]) -> None:
    await read_any(ints)  # an int reader gives objects
    await read_any(bools)
    wide: In[object] = ints
    await wide.peek()


async def writer(anything: Out[object], floats: OutputPort[float]) -> None:
    await write_ints(anything)  # an object writer takes ints
    await write_ints(floats)
    narrow: Out[bool] = anything
    await narrow.push(True)
