"""The one owner of callback data: an Enum of prefixes and a pack/parse pair, ids only, ≤ 64 bytes."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

MAX_BYTES = 64
ARG = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class Cb(enum.StrEnum):
    """What a button does; the value is the prefix sent to Telegram."""

    OPEN_SECTION = "menu:open"  # command name
    HOME = "menu:home"
    CANCEL_FLOW = "flow:cancel"
    PICK_UNIT = "reg:unit"  # unit code
    WITHDRAW_REQUEST = "reg:withdraw"
    APPROVE_MEMBER = "reg:approve"  # member id
    DECLINE_MEMBER = "reg:decline"  # member id
    PENDING_PAGE = "reg:pending"  # page
    POINTS_HISTORY = "pts:hist"  # page
    POINTS_EARN = "pts:earn"
    POINTS_RANKING = "pts:rank"
    POINTS_HOME = "pts:home"
    SET_LANGUAGE = "me:lang"  # zh | en
    TOGGLE_RANKING = "me:rank"
    EXPORT_DATA = "me:export"
    DELETE_ACCOUNT = "me:delete"
    CONFIRM_DELETE = "me:delete_yes"
    ME_HOME = "me:home"
    WELFARE_LIST = "wf:list"
    WELFARE_ITEM = "wf:item"  # item id
    WELFARE_CLAIM = "wf:claim"  # item id, slot (seq)
    WELFARE_WITHDRAW = "wf:withdraw"  # item id (lottery application / group-buy)
    WELFARE_REMIND = "wf:remind"  # item id
    WELFARE_MINE = "wf:mine"
    WELFARE_VOUCHER = "wf:voucher"  # claim id
    WELFARE_CANCEL = "wf:cancel"  # claim id
    WELFARE_CANCEL_YES = "wf:cancel_yes"  # claim id
    WELFARE_REDEEM = "wf:redeem"  # voucher code
    WELFARE_ADMIN = "wf:admin"
    WELFARE_NEW = "wf:new"
    WELFARE_MANAGE = "wf:manage"  # item id
    WELFARE_PUBLISH = "wf:publish"  # item id
    WELFARE_CLOSE = "wf:close"  # item id
    WELFARE_CLAIMS = "wf:claims"  # item id, page
    WELFARE_EDIT = "wf:edit"  # item id[, field]
    FORM_CHOICE = "form:choice"  # form, field, value
    FORM_SKIP = "form:skip"  # form, field


class BadCallback(ValueError):
    """Callback data we did not make, or made by an older version: answered politely, never a traceback."""


@dataclass(frozen=True)
class Callback:
    action: Cb
    args: tuple[str, ...]

    def int_arg(self, index: int = 0) -> int:
        """Argument `index` as a non-negative int; BadCallback otherwise."""
        try:
            value = self.args[index]
        except IndexError:
            raise BadCallback("missing argument") from None
        if not value.isdigit():
            raise BadCallback("not a number")
        return int(value)

    def str_arg(self, index: int = 0) -> str:
        """Argument `index` as text; BadCallback if missing."""
        try:
            return self.args[index]
        except IndexError:
            raise BadCallback("missing argument") from None


# Every prefix is "<section>:<action>": the first two ':'-separated parts name the action.
_BY_PREFIX = {action.value: action for action in Cb}
assert all(value.count(":") == 1 for value in _BY_PREFIX), "a callback prefix must be <section>:<action>"


def pack(action: Cb, *args: int | str) -> str:
    """Callback data for a button: prefix plus ids, ':'-separated."""
    parts = [action.value]
    for arg in args:
        text = str(arg)
        if not ARG.match(text):
            raise ValueError(f"callback argument {text!r} is not an id")
        parts.append(text)
    data = ":".join(parts)
    if len(data.encode()) > MAX_BYTES:
        raise ValueError(f"callback data over {MAX_BYTES} bytes: {data!r}")
    return data


def parse(data: str | None) -> Callback:
    """Read callback data back; BadCallback for anything pack() would not have made."""
    if not data or len(data.encode()) > MAX_BYTES:
        raise BadCallback("empty or too long")
    parts = data.split(":")
    action = _BY_PREFIX.get(":".join(parts[:2]))
    if action is None:
        raise BadCallback("unknown prefix")
    args = tuple(parts[2:])
    if not all(ARG.match(a) for a in args):
        raise BadCallback("bad argument")
    return Callback(action, args)
