"""The callback codec: typed buttons round trip, the 64-byte limit, and bad or forged data as a normal case."""

from __future__ import annotations

import contextlib
import typing
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

import bot
from buttons import INT_MAX, MAX_BYTES, BadCallback, Button, parse
from buttons.me import ConfirmDelete, DeleteAccount
from buttons.members import ApproveMember, PickUnit
from buttons.welfare import ClaimItem, EditItem, ItemClaims


def test_round_trip_with_named_fields():
    assert parse(ApproveMember(member_id=42).pack()) == ApproveMember(42)
    assert parse(ConfirmDelete().pack()) == ConfirmDelete()
    assert parse(DeleteAccount().pack()) == DeleteAccount()
    assert parse(PickUnit(unit="i801").pack()).unit == "i801"
    assert ClaimItem(item_id=42, slot=1).pack() == "wf:claim:42:1"
    assert parse("wf:claims:7:3") == ItemClaims(item_id=7, page=3)
    # An optional trailing field is left out when it is None.
    assert EditItem(5).pack() == "wf:edit:5" and parse("wf:edit:5:title") == EditItem(5, "title")


def test_pack_refuses_what_is_not_an_id_or_too_long():
    with pytest.raises(ValueError):
        PickUnit("two words").pack()
    with pytest.raises(ValueError):
        ApproveMember(-1).pack()
    with pytest.raises(ValueError):
        ApproveMember(INT_MAX + 1).pack()
    with pytest.raises(ValueError):
        EditItem(1, "x" * 33).pack()


@pytest.mark.parametrize(
    "data",
    [
        "",
        "nope",
        "reg:approve:abc",
        "reg:approve:",
        "reg:approve",  # a field missing
        "reg:approve:1:2",  # one too many
        "reg:approve:²",  # a Unicode digit
        "reg:approve:١٢",  # Arabic-Indic digits
        "reg:approve:2147483648",  # beyond PostgreSQL's integer
        "reg:approve:99999999999999999999999",  # beyond 64 bits
        "wf:claim:1:-1",
        "x" * (MAX_BYTES + 1),
        None,
    ],
)
def test_bad_data_is_a_badcallback(data):
    with pytest.raises(BadCallback):
        parse(data)


def test_prefixes_are_distinct_and_a_typo_fails_at_import():
    with pytest.raises(ValueError, match="taken"):

        @dataclass(frozen=True)
        class Again(Button, prefix="wf:claim"):
            item_id: int

    with pytest.raises(ValueError, match="section:action"):

        @dataclass(frozen=True)
        class NoSection(Button, prefix="claim"):
            pass


def test_every_installed_button_has_a_handler_and_fits():
    """Every button class that a section handles packs into Telegram's 64 bytes with its widest ids (and words as
    long as the codes the bot uses: unit codes, form and field names, voucher codes are at most 12 characters)."""
    handled = {cls for section in bot.SECTIONS for cls in section.buttons}
    assert ClaimItem in handled and ApproveMember in handled
    for cls in handled:
        widest = {name: INT_MAX if kind is int else "x" * 12 for name, kind in _kinds(cls).items()}
        try:
            cls(**widest).pack()
        except ValueError as exc:
            pytest.fail(f"{cls.__name__} does not fit at its widest: {exc}")


def _kinds(cls: type[Button]) -> dict[str, type]:
    hints = typing.get_type_hints(cls)
    return {name: int if hint is int or hint == int | None else str for name, hint in hints.items() if name != "prefix"}


@given(st.text(max_size=80))
def test_parse_never_fails_any_other_way(data):
    with contextlib.suppress(BadCallback):
        parse(data)
