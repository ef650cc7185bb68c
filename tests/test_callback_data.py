"""The callback codec: round trips, the 64-byte limit, and bad data as a normal case."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.callback_data import MAX_BYTES, BadCallback, Cb, pack, parse


def test_round_trip_and_longest_prefix_wins():
    assert parse(pack(Cb.APPROVE_MEMBER, 42)).int_arg() == 42
    assert parse(pack(Cb.CONFIRM_DELETE)).action is Cb.CONFIRM_DELETE
    assert parse(pack(Cb.DELETE_ACCOUNT)).action is Cb.DELETE_ACCOUNT
    assert parse(pack(Cb.PICK_UNIT, "i801")).str_arg() == "i801"


def test_pack_refuses_what_is_not_an_id_or_too_long():
    with pytest.raises(ValueError):
        pack(Cb.PICK_UNIT, "two words")
    with pytest.raises(ValueError):
        pack(Cb.PICK_UNIT, *(["x" * 30] * 3))


@pytest.mark.parametrize("data", ["", "nope", "reg:approve:abc", "reg:approve:", "x" * (MAX_BYTES + 1), None])
def test_bad_data_is_a_badcallback(data):
    with pytest.raises(BadCallback):
        cb = parse(data)
        cb.int_arg()


def test_all_prefixes_are_distinct_and_short():
    values = [c.value for c in Cb]
    assert len(values) == len(set(values))
    assert all(len(v.encode()) <= 20 for v in values)


@given(st.text(max_size=80))
def test_parse_never_fails_any_other_way(data):
    with contextlib.suppress(BadCallback):
        parse(data)
