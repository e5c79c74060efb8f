"""Port variance the other way round is wrong: an object reader is no int reader, an int writer no object writer."""

from mimo import In, InputPort, Out, OutputPort


async def read_ints(port: InputPort[int]) -> int:
    return await port.pop()


async def write_any(port: OutputPort[object]) -> None:
    await port.push("text")


async def reader(anything: In[object]) -> None:
    await read_ints(anything)  # E: mypy=arg-type pyright=reportArgumentType


async def writer(ints: Out[int]) -> None:
    await write_any(ints)  # E: mypy=arg-type pyright=reportArgumentType
