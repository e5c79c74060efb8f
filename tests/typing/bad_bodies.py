"""Wrong stream bodies: each marked line must be an error in both checkers."""

from mimo import In, Out, stream


@stream
async def body(x: In[int], y: Out[int]) -> None:
    await y.push("s")  # E: mypy=arg-type pyright=reportArgumentType
    s: str = await x.pop()  # noqa: F841  # E: mypy=assignment pyright=reportAssignmentType
    async for v in x:
        v.upper()  # E: mypy=attr-defined pyright=reportAttributeAccessIssue


def not_async(x: In[int], y: Out[int]) -> None:
    pass


sync_stream = stream(not_async)  # E: mypy=arg-type pyright=reportCallIssue,reportArgumentType
