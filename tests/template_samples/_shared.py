"""What every template sample uses: the shipped config, and worst-case values (see tests/test_templates.py)."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from config import PROJECT_DIR, parse_config
from models.welfare import TITLE_MAX

CONFIG = parse_config(tomllib.loads((PROJECT_DIR / "config.toml").read_text(encoding="utf-8")), {})
LIMITS = CONFIG.limits


AT = datetime(2026, 11, 28, 23, 59, tzinfo=UTC)
BIG = 1_000_000_000  # a balance, count or id nobody will reach
CODE = "ABCD2345"
SEED = "ab" * 32
SEED_HASH = "cd" * 32


def typed(n: int) -> str:
    """n characters of text someone typed: Chinese, letters, markup to escape, and one character in eight an emoji
    (2 UTF-16 units; the shortened texts leave room for rather more of them, not for a text made only of emoji)."""
    return ("福利<A&B>🎁" * n)[:n]


def person(n: int) -> str:
    """A person's name of n characters (models/members.py clean_name refuses < > / and friends)."""
    return ("欧阳&'娜娜'🌸" * n)[:n]


NAME = person(LIMITS.name_max_length)
TITLE = typed(TITLE_MAX)


def unit_names(locale: str) -> list[str]:
    return [u.name(locale) for u in CONFIG.units]


def longest_unit(locale: str) -> str:
    return max(unit_names(locale), key=len)


def member(**overrides: Any) -> SimpleNamespace:
    fields = {
        "id": BIG,
        "name": NAME,
        "employee_no": "A" * 20,
        "unit_code": "hk",
        "status": "verified",
        "ranking_opt_out": True,
    }
    return SimpleNamespace(**{**fields, **overrides})
