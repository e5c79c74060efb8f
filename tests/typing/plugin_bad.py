"""Wrong named-port wiring: mypy with the plugin reports each marked line; pyright cannot."""

from typing import Any

from mimo import In, Out, stream


@stream(ins={"x": int}, outs={"evens": int, "odds": int})
async def split(ins: Any, outs: Any, state: Any) -> None:
    pass


@stream(ins={"text": str, "count": int}, outs={"line": str})
async def label(ins: Any, outs: Any) -> None:
    pass


@stream
async def flags(a: In[int], b: In[int], yes: Out[bool], no: Out[bool]) -> None:
    pass


e1 = split.out["evnes"]  # E: mypy=mimo-port
e2 = label.in_["txt"]  # E: mypy=mimo-port
e3 = split.out["evens"] >> label.in_["text"]  # E: mypy=operator
e4 = label.out["line"] >> split.in_["x"]  # E: mypy=operator
e5 = split.out["evens"] >> flags.in_["c"]  # E: mypy=mimo-port
e6 = split.out["evens"] >> label.out["line"]  # E: mypy=operator pyright=reportOperatorIssue
e7 = flags.out["yes"] >> label.in_["text"]  # E: mypy=operator
label.out["line"].to(split.in_["x"])  # E: mypy=arg-type


@stream(ins={"v": int, "v": str})  # noqa: F601  # E: mypy=mimo-port
async def twice(ins: Any, outs: Any) -> None:
    pass


@stream(ins={"v": int}, outs={"v": int})  # E: mypy=mimo-port
async def both(ins: Any, outs: Any) -> None:
    pass


@stream(ins={"not valid": int})  # E: mypy=mimo-port
async def invalid(ins: Any, outs: Any) -> None:
    pass


@stream(ins={"maybe": int | None})
async def optional(ins: Any, outs: Any) -> None:
    pass


@stream(outs={"maybe": int | None})
async def produces_optional(ins: Any, outs: Any) -> None:
    pass


e8 = produces_optional.out["maybe"] >> split.in_["x"]  # E: mypy=operator


@stream(ins={"x": int}, outs={"y": int})
async def scaled(ins: Any, outs: Any, state: Any, *, factor: int = 2) -> None:
    pass


@stream
async def offsets(a: In[int], b: In[int], out: Out[int], *, offset: int = 0) -> None:
    pass


s1 = scaled(factor="3")  # E: mypy=arg-type
s2 = scaled(facter=3)  # E: mypy=call-arg
s3 = offsets(ofset=1)  # E: mypy=call-arg
