"""Numbers and times typed by people: ASCII digits and sane years, or a clear BadInput (never a crash)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from models.clock import parse_local_datetime
from models.errors import BadInput
from models.welfare.importing import WelfareFileError, parse_welfare_file

TZ = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    "typed",
    [
        pytest.param("0001-01-01 00:00", id="year-1"),  # OverflowError when moved to UTC
        pytest.param("0001-01-01 07:59", id="year-1-morning"),
        pytest.param("1999-12-31 23:59", id="before-2000"),
        pytest.param("3000-01-01 00:00", id="year-3000"),
        pytest.param("２０２６-12-01 12:00", id="full-width-digits"),  # strptime would take them
        pytest.param("٢٠٢٦-12-01 12:00", id="arabic-indic-digits"),
        pytest.param("2026-12-01 1²:00", id="superscript"),
    ],
)
def test_a_typed_time_needs_ascii_digits_and_a_sane_year(typed):
    with pytest.raises(BadInput) as refused:
        parse_local_datetime(typed, TZ)
    assert refused.value.key == "datetime_format"


def test_a_typed_time_in_range_still_reads():
    assert parse_local_datetime("2026-12-01 12：00", TZ).isoformat() == "2026-12-01T04:00:00+00:00"
    assert parse_local_datetime("2000-01-01 08:00", TZ).isoformat() == "2000-01-01T00:00:00+00:00"


def test_a_year_1_time_in_a_welfare_file_is_a_problem_not_a_crash():
    text = """\
[[item]]
title = "粽子"
mode = "first_come"
stock = 5
opens_at = 0001-01-01T00:00:00
closes_at = "0001-01-01 12:00"
"""
    with pytest.raises(WelfareFileError) as info:
        parse_welfare_file(text, "toml", {"i801"}, TZ)
    assert [(line, key) for line, key, _detail in info.value.problems] == [(5, "bad_time"), (6, "bad_time")]
