"""The one callback-data codec: typed buttons with named fields, packed to at most 64 bytes, parsed back safely.

Each feature declares its buttons next to it, in buttons/<feature>.py, as small frozen dataclasses:

    @dataclass(frozen=True)
    class ClaimItem(Button, prefix="wf:claim"):
        item_id: int
        slot: int

`ClaimItem(item_id=42, slot=1).pack()` gives "wf:claim:42:1"; `parse("wf:claim:42:1")` gives the instance back.
Fields are ids only: ints from 0 to INT_MAX (PostgreSQL's integer, so a forged id never overflows a query) or
short words ([A-Za-z0-9_-]{1,32}); a trailing field may be optional (`| None = None`, left out when None).
Anything pack() would not have made raises BadCallback, which the handler wrapper answers politely. This module
imports nothing from Telegram, so handlers and scheduled work (which must not import handlers) both use it.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any, ClassVar, Self

MAX_BYTES = 64
INT_MAX = 2_147_483_647
WORD = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
DIGITS = re.compile(r"^[0-9]{1,10}$")
PREFIX = re.compile(r"^[a-z]{1,8}:[a-z_]{1,16}$")

_BY_PREFIX: dict[str, type[Button]] = {}


class BadCallback(ValueError):
    """Callback data we did not make, or made by an older version: answered politely, never a traceback."""


@dataclasses.dataclass(frozen=True)
class Button:
    """Base of every button's callback data; subclasses name their prefix: `class X(Button, prefix="a:b")`."""

    prefix: ClassVar[str] = ""

    def __init_subclass__(cls, prefix: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not PREFIX.match(prefix):
            raise ValueError(f"{cls.__name__}: prefix {prefix!r} must look like 'section:action'")
        if prefix in _BY_PREFIX:
            raise ValueError(f"{cls.__name__}: prefix {prefix!r} is taken by {_BY_PREFIX[prefix].__name__}")
        cls.prefix = prefix
        _BY_PREFIX[prefix] = cls

    def pack(self) -> str:
        """The callback data for this button; ValueError if a field is not a small id (a bug, not user input)."""
        parts = [self.prefix]
        for spec in _fields(type(self)):
            value = getattr(self, spec.name)
            if value is None:
                if not spec.optional:
                    raise ValueError(f"{type(self).__name__}.{spec.name} is required")
                break
            parts.append(_pack_value(type(self).__name__, spec, value))
        data = ":".join(parts)
        if len(data.encode()) > MAX_BYTES:
            raise ValueError(f"callback data over {MAX_BYTES} bytes: {data!r}")
        return data

    @classmethod
    def unpack(cls, args: list[str]) -> Self:
        """The button from the parts after its prefix; BadCallback for anything pack() would not have made."""
        specs = _fields(cls)
        required = sum(1 for spec in specs if not spec.optional)
        if not required <= len(args) <= len(specs):
            raise BadCallback("wrong number of fields")
        values = {spec.name: _parse_value(spec, text) for spec, text in zip(specs, args, strict=False)}
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class _Field:
    name: str
    kind: type
    optional: bool


_FIELDS: dict[type, tuple[_Field, ...]] = {}


def _fields(cls: type[Button]) -> tuple[_Field, ...]:
    """Each field's name, kind (int or str) and whether it may be left out (cached per class)."""
    found = _FIELDS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls)
        specs = []
        for field in dataclasses.fields(cls):
            hint = hints[field.name]
            args = typing.get_args(hint) if isinstance(hint, types.UnionType) else ()
            optional = type(None) in args
            kind = next(a for a in args if a is not type(None)) if optional else hint
            if kind not in (int, str):
                raise TypeError(f"{cls.__name__}.{field.name}: a button field is an int or a str")
            specs.append(_Field(field.name, kind, optional))
        found = _FIELDS[cls] = tuple(specs)
    return found


def _pack_value(owner: str, spec: _Field, value: Any) -> str:
    if spec.kind is int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INT_MAX:
            raise ValueError(f"{owner}.{spec.name}={value!r} is not an id")
        return str(value)
    if not isinstance(value, str) or not WORD.match(value):
        raise ValueError(f"{owner}.{spec.name}={value!r} is not a short word")
    return value


def _parse_value(spec: _Field, text: str) -> int | str:
    if spec.kind is int:
        if not DIGITS.match(text) or int(text) > INT_MAX:
            raise BadCallback("not an id")
        return int(text)
    if not WORD.match(text):
        raise BadCallback("not a word")
    return text


def parse(data: str | None) -> Button:
    """Read callback data back into its button; BadCallback for anything pack() would not have made."""
    if not data or len(data.encode()) > MAX_BYTES:
        raise BadCallback("empty or too long")
    parts = data.split(":")
    cls = _BY_PREFIX.get(":".join(parts[:2]))
    if cls is None:
        raise BadCallback("unknown prefix")
    return cls.unpack(parts[2:])


def pack(button: Button) -> str:
    """The callback data of a button (same as button.pack())."""
    return button.pack()
