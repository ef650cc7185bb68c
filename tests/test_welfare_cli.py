"""`python bot.py import-welfare FILE` and `python bot.py verify-draw ITEM_ID`, run as real processes.

The processes get a SQLite file in tmp_path and no token; what they print is compared with the labels they
are meant to print, so the tests follow the wording in messages/ instead of copying it.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from messages import Renderer
from models import welfare
from models.db import Database
from models.members import Member, Status
from models.welfare import importing as welfare_import
from tests.conftest import make_config
from tests.test_e2e_process import bot_env, run_cli

RENDERER = Renderer()
TZ = ZoneInfo("Asia/Shanghai")
# Far in the future, so "already ended" never applies, whenever the tests run.
GOOD_TOML = """\
[[item]]
title = "端午粽子礼盒"
mode = "first_come"
cost = 30
stock = 100
opens_at = 2099-06-18T12:00:00
closes_at = 2099-06-20T18:00:00

[[item]]
title = "音乐会门票"
mode = "抽签"
stock = 2
opens_at = 2099-06-18T12:00:00
closes_at = 2099-06-19T12:00:00
units = ["i801"]
"""
GOOD_CSV = """\
标题,模式,积分,库存,开始时间,结束时间,成团人数,单位
水果团购,团购,5,,2099-06-18 12:00,2099-06-19 12:00,3,i801 i802
读书卡,普惠,0,,2099-06-18 12:00,2099-06-19 12:00,,
"""
BAD_TOML = """\
[[item]]
title = "粽子"
mode = "first_come"
stock = 5
opens_at = 2099-06-18T12:00:00
closes_at = 2099-06-18T11:00:00

[[item]]
title = "电影票"
mode = "raffle"
stock = 5
opens_at = 2099-06-18T12:00:00
closes_at = 2099-06-19T12:00:00
"""
APPLY_AT = datetime(2099, 6, 18, 13, 0, tzinfo=TZ)
DRAW_AT = datetime(2099, 6, 19, 13, 0, tzinfo=TZ)


def say(key: str, **context: object) -> str:
    """A command-line text in the language the processes use (the configured default)."""
    language = make_config("sqlite://", Path(".")).default_language
    return RENDERER.label(language, key, **context)


def db_file(tmp_path: Path) -> Path:
    """The SQLite file bot_env points the processes at."""
    return tmp_path / "e2e.db"


def stored_items(tmp_path: Path) -> list[tuple[str, str, str, str | None]]:
    """(title, mode, status, seed hash) of every stored item."""
    with sqlite3.connect(db_file(tmp_path)) as conn:
        return conn.execute("SELECT title, mode, status, seed_hash FROM welfare_item ORDER BY id").fetchall()


def import_file(tmp_path: Path, name: str, text: str) -> tuple[int, str, str]:
    """Write a welfare file and import it; returns (exit code, stdout, stderr)."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    result = run_cli(["import-welfare", str(path)], bot_env(tmp_path))
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout, result.stderr


def test_every_problem_a_welfare_file_can_have_has_a_label_in_both_languages() -> None:
    section = welfare_import.__doc__.split("Problem keys:")[1].split("The detail")[0]
    section = re.sub(r"and the draft checks of [\w.]+:", ",", section)
    keys = [k.strip().removeprefix("and ").strip(" .") for k in section.replace("\n", " ").split(",") if k.strip()]
    assert len(keys) >= 20 and all(re.fullmatch(r"[a-z_]+", k) for k in keys), keys
    for language in ("zh", "en"):
        missing = [k for k in keys if f"cli_welfare_{k}" not in RENDERER.label_keys(language)]
        assert not missing, (language, missing)


def test_a_toml_file_and_a_csv_file_import(tmp_path: Path) -> None:
    code, out, err = import_file(tmp_path, "items.toml", GOOD_TOML)
    assert code == 0, out + err
    assert say("cli_welfare_done", count=2, ids="1, 2") in out
    code, out, err = import_file(tmp_path, "items.CSV", GOOD_CSV)
    assert code == 0, out + err
    assert say("cli_welfare_done", count=2, ids="3, 4") in out
    items = stored_items(tmp_path)
    assert [(title, mode, status) for title, mode, status, _hash in items] == [
        ("端午粽子礼盒", "first_come", "published"),
        ("音乐会门票", "lottery", "published"),
        ("水果团购", "group_buy", "published"),
        ("读书卡", "universal", "published"),
    ]
    # Only the lottery gets a committed seed, and the importer is recorded as the bureau (Telegram id 0).
    assert [h is not None and len(h) == 64 for *_rest, h in items] == [False, True, False, False]
    with sqlite3.connect(db_file(tmp_path)) as conn:
        assert conn.execute("SELECT DISTINCT created_by_telegram_id, owner_unit FROM welfare_item").fetchall() == [
            (0, None)
        ]


def test_a_bad_file_reports_every_bad_line_and_imports_nothing(tmp_path: Path) -> None:
    code, out, err = import_file(tmp_path, "bad.toml", BAD_TOML)
    assert code == 1, out + err
    lines = err.strip().splitlines()
    assert lines == [
        say("cli_welfare_before_open", line=6, detail="closes_at"),
        say("cli_welfare_bad_mode", line=10, detail="mode: raffle"),
    ]
    assert not db_file(tmp_path).exists(), "a refused file must not touch the database"
    code, _out, err = import_file(tmp_path, "items.txt", GOOD_TOML)
    assert code == 2 and say("cli_welfare_bad_format", path=str(tmp_path / "items.txt")) in err
    assert not db_file(tmp_path).exists()


async def draw_a_lottery(tmp_path: Path, applicants: int) -> tuple[int, list[int]]:
    """Import a lottery, let members apply and draw it in the database; returns (item id, member ids)."""
    code, out, err = import_file(tmp_path, "lottery.toml", GOOD_TOML)
    assert code == 0, out + err
    item_id = 2
    db = Database(f"sqlite:///{db_file(tmp_path)}")
    try:
        with db.writing() as s:
            people = [
                Member(
                    telegram_id=8000 + i, unit_code="i801", employee_no=f"V{i}", name=f"会员{i}", status=Status.VERIFIED
                )
                for i in range(applicants)
            ]
            s.add_all(people)
            s.flush()
            for m in people:
                welfare.apply_lottery(s, m, item_id, APPLY_AT, TZ)
        with db.writing() as s:
            drawn = welfare.draw_lottery(s, item_id, DRAW_AT, TZ)
        assert drawn.done and len(drawn.winners) == 2
    finally:
        await db.dispose()
    return item_id, sorted(m.id for m in people)


async def test_verify_draw_says_a_fair_draw_checks_out_and_a_tampered_one_does_not(tmp_path: Path) -> None:
    item_id, applicants = await draw_a_lottery(tmp_path, 5)
    with sqlite3.connect(db_file(tmp_path)) as conn:
        seed, seed_hash = conn.execute("SELECT seed, seed_hash FROM welfare_item WHERE id = ?", (item_id,)).fetchone()
    winners = sorted(welfare.verify_draw(seed, applicants, 2))

    result = run_cli(["verify-draw", str(item_id)], bot_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    ids = ", ".join(map(str, applicants))
    for expected in (
        say("cli_verify_title", item_id=item_id, title="音乐会门票"),
        say("cli_verify_seed_hash", seed_hash=seed_hash),
        say("cli_verify_seed", seed=seed),
        say("cli_verify_applicants", count=5, ids=ids),
        say("cli_verify_recomputed", ids=", ".join(map(str, winners))),
        say("cli_verify_stored", ids=", ".join(map(str, winners))),
        say("cli_verify_hash_ok"),
        say("cli_verify_winners_ok"),
        say("cli_verify_ok"),
    ):
        assert expected in out, (expected, out)

    # Someone hands a loser's place to a winner in the database: the recomputed draw no longer agrees.
    loser = next(m for m in applicants if m not in winners)
    with sqlite3.connect(db_file(tmp_path)) as conn:
        conn.execute(
            "UPDATE welfare_claim SET status = 'lost', voucher_code = NULL WHERE item_id = ? AND member_id = ?",
            (item_id, winners[0]),
        )
        conn.execute(
            "UPDATE welfare_claim SET status = 'active', voucher_code = 'ZZZZ2345' WHERE item_id = ? AND member_id = ?",
            (item_id, loser),
        )
    result = run_cli(["verify-draw", str(item_id)], bot_env(tmp_path))
    assert result.returncode == 1, result.stdout + result.stderr
    assert say("cli_verify_hash_ok") in result.stdout
    assert say("cli_verify_stored", ids=", ".join(map(str, sorted([winners[1], loser])))) in result.stdout
    assert say("cli_verify_winners_bad") in result.stdout and say("cli_verify_bad") in result.stdout
    assert say("cli_verify_ok") not in result.stdout

    # A seed swapped after the draw does not match the hash published before it.
    with sqlite3.connect(db_file(tmp_path)) as conn:
        conn.execute("UPDATE welfare_item SET seed = ? WHERE id = ?", ("0" * 64, item_id))
    result = run_cli(["verify-draw", str(item_id)], bot_env(tmp_path))
    assert result.returncode == 1
    assert say("cli_verify_hash_bad") in result.stdout


@pytest.mark.parametrize(("item_id", "code", "key"), [(2, 1, "cli_verify_not_drawn"), (1, 2, None), (99, 2, None)])
def test_verify_draw_before_the_draw_and_for_items_that_are_no_lottery(
    tmp_path: Path, item_id: int, code: int, key: str | None
) -> None:
    imported, out, err = import_file(tmp_path, "items.toml", GOOD_TOML)
    assert imported == 0, out + err
    result = run_cli(["verify-draw", str(item_id)], bot_env(tmp_path))
    assert result.returncode == code, result.stdout + result.stderr
    if key is None:
        assert say("cli_verify_unknown_item", item_id=item_id) in result.stderr
    else:
        assert say(key) in result.stdout
        assert say("cli_verify_title", item_id=item_id, title="音乐会门票") in result.stdout
