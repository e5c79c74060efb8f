"""A mypy plugin that checks mimo port names and item types where annotations cannot.

Enable it in the mypy configuration::

    [mypy]
    plugins = mimo.dsl.mypy_plugin

With it, mypy reads the dict form, ``@stream(ins={'x': int}, outs={'y': str})``,
and the port parameters of annotated streams with several ports, and then checks

* ``s.out['y']`` / ``s.in_['x']``: the name must be one of the stream's ports
  (a misspelling is an error with a suggestion), and the reference carries the
  port's item type;
* ``a.out['y'] >> b.in_['x']``: the items ``y`` produces must be acceptable to
  ``x`` (mypy reports the ``>>`` as an unsupported operand otherwise);
* the port maps themselves: a name declared twice, used both as an input and as
  an output, or not a valid identifier.
* ``s(setting=value)`` on such streams: the settings are the body's keyword-only
  parameters (streams with one port of a kind have them typed without the plugin).

Port maps that are not literals (built at run time from configuration, say)
stay statically untyped; the run-time checks still apply. pyright has no plugin
API, so there these forms are untyped, as without the plugin. The plugin uses
mypy's plugin API, which mypy does not promise to keep stable.
"""

from __future__ import annotations

import difflib
import keyword
from collections.abc import Callable

from mypy.erasetype import erase_typevars
from mypy.errorcodes import ErrorCode
from mypy.nodes import (
    DictExpr,
    Expression,
    IndexExpr,
    ListExpr,
    MemberExpr,
    NameExpr,
    OpExpr,
    RefExpr,
    StrExpr,
    TupleExpr,
    TypeAlias,
)
from mypy.plugin import FunctionContext, MethodContext, Plugin
from mypy.types import (
    AnyType,
    CallableType,
    Instance,
    LiteralType,
    NoneType,
    Overloaded,
    Parameters,
    ProperType,
    Type,
    TypedDictType,
    TypeOfAny,
    TypeType,
    UnionType,
    get_proper_type,
)

#: The error code of every error this plugin reports: ``# type: ignore[mimo-port]``.
MIMO_PORT = ErrorCode("mimo-port", "Check mimo stream port names and declarations", "mimo")

_STREAM = "mimo.dsl._decorator.stream"
_ANNOTATED_CALL = "mimo.dsl._decorator._AnnotatedDecorator.__call__"
_PORTS_DECORATOR = "mimo.dsl._decorator._PortsDecorator"
_PORTS_CALL = "mimo.dsl._decorator._PortsDecorator.__call__"
_PORT_STREAM = "mimo.dsl._decorator.PortStream"
_IN_GET = "mimo.dsl._build.InPorts.__getitem__"
_OUT_GET = "mimo.dsl._build.OutPorts.__getitem__"
_INPUT_PORT = "mimo._ports.InputPort"
_OUTPUT_PORT = "mimo._ports.OutputPort"
_ANY_NAMES = {"typing.Any", "typing_extensions.Any"}

_Api = FunctionContext | MethodContext


class MimoPlugin(Plugin):
    """Types ``@stream`` port sets as TypedDicts, and checks ``.out[...]`` / ``.in_[...]`` against them."""

    def get_function_hook(self, fullname: str) -> Callable[[FunctionContext], Type] | None:
        if fullname == _STREAM:
            return _stream_call
        return None

    def get_method_hook(self, fullname: str) -> Callable[[MethodContext], Type] | None:
        if fullname == _ANNOTATED_CALL:
            return _annotated_call
        if fullname == _PORTS_CALL:
            return _ports_call
        if fullname == _IN_GET:
            return lambda ctx: _port_ref(ctx, "input")
        if fullname == _OUT_GET:
            return lambda ctx: _port_ref(ctx, "output")
        return None


def plugin(version: str) -> type[Plugin]:
    """mypy's entry point."""
    return MimoPlugin


# -- @stream ----------------------------------------------------------------------


def _stream_call(ctx: FunctionContext) -> Type:
    ret = get_proper_type(ctx.default_return_type)
    if not isinstance(ret, Instance):
        return ctx.default_return_type
    if ret.type.fullname == _PORTS_DECORATOR:
        ins = _arg(ctx, "ins")
        outs = _arg(ctx, "outs")
        in_ports = _port_map(ctx, ins, "input") if ins is not None else {}
        out_ports = _port_map(ctx, outs, "output") if outs is not None else {}
        if in_ports is None or out_ports is None:
            return ctx.default_return_type
        for name in in_ports:
            if name in out_ports:
                ctx.api.fail(
                    f'Port "{name}" is declared both as an input and as an output', ctx.context, code=MIMO_PORT
                )
        # Any further type argument (a PortStream's settings) is kept as mypy inferred it.
        return ret.copy_modified(args=[_typed_dict(ctx, in_ports), _typed_dict(ctx, out_ports), *ret.args[2:]])
    if ret.type.fullname == _PORT_STREAM and ctx.arg_types and ctx.arg_types[0]:
        return _from_signature(ctx, ret, ctx.arg_types[0][0])
    return ctx.default_return_type


def _annotated_call(ctx: MethodContext) -> Type:
    ret = get_proper_type(ctx.default_return_type)
    if isinstance(ret, Instance) and ret.type.fullname == _PORT_STREAM and ctx.arg_types and ctx.arg_types[0]:
        return _from_signature(ctx, ret, ctx.arg_types[0][0])
    return ctx.default_return_type


def _from_signature(ctx: _Api, ret: Instance, fn_type: Type) -> Type:
    fn = get_proper_type(fn_type)
    if not isinstance(fn, CallableType):
        return ret
    ins: dict[str, Type] = {}
    outs: dict[str, Type] = {}
    for name, kind, t in zip(fn.arg_names, fn.arg_kinds, fn.arg_types):
        if name is None or not kind.is_positional():
            continue
        pt = get_proper_type(t)
        if isinstance(pt, Instance) and pt.type.fullname == _INPUT_PORT:
            ins[name] = pt.args[0]
        elif isinstance(pt, Instance) and pt.type.fullname == _OUTPUT_PORT:
            outs[name] = pt.args[0]
    return ret.copy_modified(args=[_typed_dict(ctx, ins), _typed_dict(ctx, outs), _settings(fn)])


def _ports_call(ctx: MethodContext) -> Type:
    """``@stream(ins=..., outs=...)`` applied to its body: the PortStream's settings are the body's."""
    ret = get_proper_type(ctx.default_return_type)
    fn = get_proper_type(ctx.arg_types[0][0]) if ctx.arg_types and ctx.arg_types[0] else None
    if not isinstance(ret, Instance) or ret.type.fullname != _PORT_STREAM or not isinstance(fn, CallableType):
        return ctx.default_return_type
    return ret.copy_modified(args=[*ret.args[:2], _settings(fn)])


def _settings(fn: CallableType) -> Parameters:
    """The keyword-only parameters of a stream body: what ``s(name=value)`` takes."""
    named = [(t, k, n) for t, k, n in zip(fn.arg_types, fn.arg_kinds, fn.arg_names) if k.is_named(star=False)]
    return Parameters([t for t, _, _ in named], [k for _, k, _ in named], [n for _, _, n in named])


def _arg(ctx: FunctionContext, name: str) -> Expression | None:
    for names, args in zip(ctx.callee_arg_names, ctx.args):
        if names == name and args:
            return args[0]
    return None


def _port_map(ctx: FunctionContext, expr: Expression, kind: str) -> dict[str, Type] | None:
    """Port name to item type from a literal list or dict; None when not a literal."""
    pairs: list[tuple[Expression, Type]]
    if isinstance(expr, DictExpr):
        pairs = []
        for key, value in expr.items:
            if key is None:
                return None  # **spread: not statically known
            pairs.append((key, _item_type(ctx, value)))
    elif isinstance(expr, ListExpr | TupleExpr):
        pairs = [(e, AnyType(TypeOfAny.explicit)) for e in expr.items]
    else:
        return None
    ports: dict[str, Type] = {}
    for key, item in pairs:
        if not isinstance(key, StrExpr):
            return None
        name = key.value
        if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
            ctx.api.fail(
                f'Invalid {kind} port name "{name}": it must be an identifier, not a keyword, not starting with "_"',
                key,
                code=MIMO_PORT,
            )
        if name in ports:
            ctx.api.fail(f'{kind.capitalize()} port "{name}" is declared twice', key, code=MIMO_PORT)
        ports[name] = item
    return ports


def _item_type(ctx: FunctionContext, expr: Expression) -> Type:
    if isinstance(expr, NameExpr | MemberExpr) and expr.fullname in _ANY_NAMES:
        return AnyType(TypeOfAny.explicit)
    if isinstance(expr, NameExpr) and expr.fullname == "builtins.None":
        return NoneType()
    if isinstance(expr, RefExpr) and isinstance(expr.node, TypeAlias):
        return expr.node.target
    if isinstance(expr, OpExpr) and expr.op == "|":
        return UnionType.make_union([_item_type(ctx, expr.left), _item_type(ctx, expr.right)])
    if isinstance(expr, IndexExpr) and isinstance(expr.base, RefExpr):
        args = expr.index.items if isinstance(expr.index, TupleExpr) else [expr.index]
        if expr.base.fullname in ("typing.Optional", "typing_extensions.Optional"):
            return UnionType.make_union([_item_type(ctx, args[0]), NoneType()])
        if expr.base.fullname in ("typing.Union", "typing_extensions.Union"):
            return UnionType.make_union([_item_type(ctx, a) for a in args])
    t: ProperType = get_proper_type(ctx.api.get_expression_type(expr))
    if isinstance(t, CallableType) and t.is_type_obj():
        return erase_typevars(t.ret_type)
    if isinstance(t, Overloaded) and t.is_type_obj():
        return erase_typevars(t.items[0].ret_type)
    if isinstance(t, TypeType):
        return t.item
    if isinstance(t, AnyType):
        return t
    ctx.api.fail(
        "Cannot read an item type from this port declaration; use a class, a union of classes "
        "(int | None) or a generic alias such as list[int]",
        expr,
        code=MIMO_PORT,
    )
    return AnyType(TypeOfAny.from_error)


def _typed_dict(ctx: _Api, ports: dict[str, Type]) -> TypedDictType:
    fallback = ctx.api.named_generic_type("typing._TypedDict", [])
    return TypedDictType(dict(ports), set(ports), set(), fallback)


# -- s.out['x'] / s.in_['y'] ----------------------------------------------------------


def _port_ref(ctx: MethodContext, kind: str) -> Type:
    ret = get_proper_type(ctx.default_return_type)
    this = get_proper_type(ctx.type)
    if not isinstance(ret, Instance) or not isinstance(this, Instance) or not this.args:
        return ctx.default_return_type
    ports = get_proper_type(this.args[0])
    if not isinstance(ports, TypedDictType) or not ctx.arg_types or not ctx.arg_types[0]:
        return ctx.default_return_type
    name = _literal_str(ctx.arg_types[0][0])
    if name is None:
        return ctx.default_return_type
    if name not in ports.items:
        names = list(ports.items)
        close = difflib.get_close_matches(name, names, n=1)
        if close:
            hint = f'; did you mean "{close[0]}"?'
        elif names:
            hint = f" (its {kind}s: {', '.join(names)})"
        else:
            hint = f" (it has no {kind}s)"
        ctx.api.fail(f'Stream has no {kind} port "{name}"{hint}', ctx.context, code=MIMO_PORT)
        return ret.copy_modified(args=[AnyType(TypeOfAny.from_error)])
    return ret.copy_modified(args=[ports.items[name]])


def _literal_str(t: Type) -> str | None:
    pt = get_proper_type(t)
    if isinstance(pt, Instance) and pt.last_known_value is not None:
        pt = pt.last_known_value
    if isinstance(pt, LiteralType) and isinstance(pt.value, str):
        return pt.value
    return None
