"""Where a pydantic error is: the YAML path it points at, and the unions it passed on the way.

Pydantic reports a value that fails a union (an action, a condition, ``{setting: name}`` or a
plain value) once per union member, with the member in the error's location
(``rules.0.then.0.CreateTaskAction.create_task.subject``). Walking the model's types along that
location splits it into the path in the YAML and the union choices on the way; ``preferred`` says
which members the admin evidently meant, from the YAML itself (the key they wrote, or the kind of
value).
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from handlers.rules.errors import Path


def unwrap(tp: Any) -> Any:
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
            continue
        members = union_args(tp)
        if members is not None and len(members) == 1:
            tp = members[0]
            continue
        return tp


def union_args(tp: Any) -> list[Any] | None:
    if get_origin(tp) in (Union, types.UnionType):
        return [m for m in get_args(tp) if m is not type(None)]
    return None


def is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def keys_of(model: type[BaseModel]) -> list[str]:
    """The YAML keys a model accepts, aliases first, in definition order."""
    return [info.alias or name for name, info in model.model_fields.items()]


def branch(members: Sequence[Any], tag: str) -> Any:
    """The union member pydantic names ``tag`` (``CreateTaskAction``, ``dict[str,...]``, ``str``)."""
    for member in members:
        if is_model(member) and (tag == member.__name__ or tag.endswith(f" {member.__name__}]")):
            return member
        origin = get_origin(member) or member
        if tag.split("[")[0].lower() == getattr(origin, "__name__", "").lower():
            return member
    return None


def _child(tp: Any, seg: str | int) -> Any:
    if is_model(tp):
        for name, info in tp.model_fields.items():
            if seg in (name, info.alias):
                return info.annotation
        return None
    origin, args = get_origin(tp), get_args(tp)
    if origin is list and args:
        return args[0]
    if origin is tuple and args:
        return args[0] if args[-1] is Ellipsis or not isinstance(seg, int) else args[seg]
    if origin is dict and len(args) == 2:
        return args[1]
    return None


@dataclass(frozen=True)
class Choice:
    """A union on an error's way: where (data path), the member pydantic tried, all members."""

    at: Path
    tag: str
    members: tuple[Any, ...]


@dataclass(frozen=True)
class Located:
    """One pydantic error with its location split into the YAML path and the union members tried."""

    kind: str
    msg: str
    ctx: dict[str, Any]
    path: Path
    choices: tuple[Choice, ...]
    container: Any  # the type holding the last path segment (a model for unknown keys)
    target: Any  # the type expected at the path


def locate_error(root: type[BaseModel], err: Any) -> Located:
    tp: Any = root
    container: Any = None
    path: list[str | int] = []
    choices: list[Choice] = []
    for seg in err["loc"]:
        tp = unwrap(tp)
        members = union_args(tp)
        if members is not None and isinstance(seg, str) and branch(members, seg) is not None:
            choices.append(Choice(tuple(path), seg, tuple(members)))
            tp = branch(members, seg)
            continue
        container, tp = tp, _child(tp, seg)
        path.append(seg)
    return Located(err["type"], err["msg"], dict(err.get("ctx") or {}), tuple(path),
                    tuple(choices), container, unwrap(tp))


def preferred(node: Any, members: Sequence[Any]) -> tuple[Any, ...]:
    """The members the admin evidently meant: by the keys they wrote, or by the kind of value."""
    models = [m for m in members if is_model(m)]
    others = [m for m in members if not is_model(m)]
    if isinstance(node, dict):
        keyed = [m for m in models if set(node) & set(keys_of(m))]
        dicts = [m for m in others if get_origin(m) is dict]
        return tuple(keyed or dicts or models or members)
    return tuple(others or members)
