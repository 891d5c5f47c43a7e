"""Texts whose Jinja only looks data up, rendered from the syntax tree Jinja compiles them from.

Most texts in the rules and templates are literal text with ``{{ name }}``, ``{{ a.b }}`` or
``{{ a or "none" }}`` outputs, some inside ``{% if name %}``. Jinja renders each through a new
``Context`` per render, most of what a render costs for such a text; about nine renders an event.
``plain_text`` turns the parsed template (the very tree Jinja compiles) into a function that
renders it directly, with Jinja's meaning for each node it knows:

- text as written (the parser has already applied ``trim_blocks``, ``lstrip_blocks`` and line
  endings), each value as ``str(value)``, or ``markupsafe.escape(value)`` under autoescape;
- a name from the context; ``a.b`` of a plain ``dict`` as its item ``b``, as the sandbox reads
  one when ``b`` is not an attribute of dicts;
- ``or``, ``and``, ``not``, ``is none`` and ``if``/``elif``/``else`` with Python's truthiness.

A text with any other node (filters, calls, loops, ``set``...) gets no such function. And when a
render meets anything but the plain case (a name missing from the context, which StrictUndefined
reports, or that only Jinja's globals have; an attribute of anything but a dict; a dict's own
method; any error), the function raises ``NotPlain`` and the caller renders the text with Jinja:
its output and its errors are always exactly Jinja's. Event values stay data: nothing here calls,
imports or reads an attribute of a value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import nodes
from markupsafe import escape

Context = Mapping[str, Any]
# One node's output for a context.
_Emit = Callable[[Context], str]
_Value = Callable[[Context], Any]


class NotPlain(Exception):
    """This render is not the plain case: render the text with Jinja instead."""


def plain_text(template: nodes.Template, html: bool) -> Callable[[Context], str] | None:
    """A function rendering ``template`` as Jinja does (stripped, as every text is), or ``None``
    when the text uses anything beyond data lookups. ``html``: the text is autoescaped."""
    emit = _block(template.body, html)
    if emit is None:
        return None

    def render(context: Context) -> str:
        try:
            return emit(context).strip()
        except NotPlain:
            raise
        except Exception as exc:
            raise NotPlain from exc  # a missing name among them (a KeyError)

    return render


def _block(body: list[nodes.Node], html: bool) -> _Emit | None:
    parts = [_statement(node, html) for node in body]
    if any(part is None for part in parts):
        return None
    emits: tuple[_Emit, ...] = tuple(part for part in parts if part is not None)
    if len(emits) == 1:
        return emits[0]  # most texts are one output: nothing around it

    def run(context: Context) -> str:
        parts = []
        for emit in emits:
            parts.append(emit(context))
        return "".join(parts)

    return run


def _statement(node: nodes.Node, html: bool) -> _Emit | None:
    if isinstance(node, nodes.Output):
        return _output(node, html)
    if isinstance(node, nodes.If):
        return _if(node, html)
    return None


def _output(node: nodes.Output, html: bool) -> _Emit | None:
    """The output as its words joined with each value shown (``str``, or ``escape`` under
    autoescape), as Jinja's own code joins them: the words cut once, around the values."""
    words: list[str] = [""]  # words[i] comes before value i, the last after every value
    values: list[_Value] = []
    names: list[str | None] = []
    for child in node.nodes:
        if isinstance(child, nodes.TemplateData):
            words[-1] += child.data
            continue
        value = _value(child)
        if value is None:
            return None
        values.append(value)
        names.append(child.name if isinstance(child, nodes.Name) else None)
        words.append("")
    shown: Callable[[Any], str] = escape if html else str
    head, tail = words[0], words[-1]
    if not values:
        return lambda context: head
    name = names[0]
    if len(values) == 1 and name is not None:
        # One name, the most common output: looked up in place (a missing one is a KeyError,
        # which the render hands to Jinja to report).
        return lambda context: "".join((head, shown(context[name]), tail))
    pairs = tuple(zip(values, words[1:], strict=True))

    def run(context: Context) -> str:
        parts = [head]
        for value, after in pairs:
            parts.append(shown(value(context)))
            parts.append(after)
        return "".join(parts)

    return run


def _if(node: nodes.If, html: bool) -> _Emit | None:
    branches: list[tuple[_Value, _Emit]] = []
    for test_node, body in ((node.test, node.body),
                            *((branch.test, branch.body) for branch in node.elif_)):
        test, emit = _value(test_node), _block(body, html)
        if test is None or emit is None:
            return None
        branches.append((test, emit))
    otherwise = _block(node.else_, html) if node.else_ else _nothing
    if otherwise is None:
        return None

    def run(context: Context) -> str:
        for test, emit in branches:
            if test(context):
                return emit(context)
        return otherwise(context)

    return run


def _nothing(context: Context) -> str:
    return ""


def _value(node: nodes.Node) -> _Value | None:
    """The node's value for a context; ``None`` when the node is not a data lookup."""
    make = _VALUES.get(type(node))
    return make(node) if make is not None else None


def _name(node: nodes.Name) -> _Value | None:
    if node.ctx != "load":
        return None
    name = node.name

    def look(context: Context) -> Any:
        try:
            return context[name]
        except KeyError:
            raise NotPlain from None  # undefined, or one of Jinja's globals: Jinja says which

    return look


def _getattr(node: nodes.Getattr) -> _Value | None:
    attr, inner = node.attr, _value(node.node)
    # A dict's own attribute (``items``, ``get``, ``__class__``) is what the sandbox returns for
    # ``a.items``, not the item: Jinja's to answer.
    if inner is None or node.ctx != "load" or hasattr(dict, attr):
        return None
    if isinstance(node.node, nodes.Name) and node.node.ctx == "load":
        name = node.node.name  # ``a.b``, the usual case: one lookup, no call for ``a``

        def item_of_name(context: Context) -> Any:
            value = context[name]  # a missing name is a KeyError: Jinja's to report
            if type(value) is not dict or attr not in value:
                raise NotPlain
            return value[attr]

        return item_of_name

    def item(context: Context) -> Any:
        value = inner(context)
        if type(value) is not dict or attr not in value:
            raise NotPlain
        return value[attr]

    return item


def _const(node: nodes.Const) -> _Value:
    value = node.value
    return lambda context: value


def _or(node: nodes.Or) -> _Value | None:
    left, right = _value(node.left), _value(node.right)
    if left is None or right is None:
        return None
    return lambda context: left(context) or right(context)


def _and(node: nodes.And) -> _Value | None:
    left, right = _value(node.left), _value(node.right)
    if left is None or right is None:
        return None
    return lambda context: left(context) and right(context)


def _not(node: nodes.Not) -> _Value | None:
    inner = _value(node.node)
    if inner is None:
        return None
    return lambda context: not inner(context)


def _test(node: nodes.Test) -> _Value | None:
    # ``is none`` alone: the one test the texts use, and one that reads nothing but identity.
    inner = _value(node.node)
    if (inner is None or node.name != "none" or node.args or node.kwargs
            or node.dyn_args is not None or node.dyn_kwargs is not None):
        return None
    return lambda context: inner(context) is None


# The expression nodes a plain text may hold, each with how its value is read.
_VALUES: Mapping[type[nodes.Node], Callable[[Any], _Value | None]] = {
    nodes.Name: _name,
    nodes.Getattr: _getattr,
    nodes.Const: _const,
    nodes.Or: _or,
    nodes.And: _and,
    nodes.Not: _not,
    nodes.Test: _test,
}
