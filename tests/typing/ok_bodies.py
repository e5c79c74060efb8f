"""Inside a stream body the ports are typed by their annotations."""

from typing import assert_type

from mimo import EndOfStream, In, InputPort, Out, OutputPort, stream


@stream
async def body(a: In[int], b: In[str], total: Out[int], log: Out[str], *, scale: int = 1) -> None:
    assert_type(a, InputPort[int])
    assert_type(total, OutputPort[int])
    first = await a.pop()
    assert_type(first, int)
    assert_type(await b.peek(), str)
    async for x in a:
        assert_type(x, int)
        await total.push(x * scale)
    try:
        while True:
            s = await b.pop()
            await log.push(s.upper())
    except EndOfStream:
        pass
    assert_type(a.closed, bool)
    assert_type(len(a), int)
    log.close()
