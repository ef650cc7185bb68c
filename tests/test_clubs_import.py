"""`python bot.py import-clubs FILE`: TOML and CSV, line-precise errors, idempotent by code, leaders named."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import select

import bot
from messages import Renderer
from models.clubs import Club, ClubMember
from models.db import Database
from models.members import Member, Status
from tests.conftest import make_config, sqlite_url

RENDERER = Renderer()
GOOD_TOML = """\
# The bureau's clubs
[[club]]
code = "run"
name = "航天跑团"
description = "每周六晨跑"
open = false
units = ["i801", "i805"]
leaders = ["i801:A1234"]

[[club]]
code = "chess"
name = "象棋"
"""
GOOD_CSV = """\
code,name,description,open,units,leaders
run,航天跑团（新）,每周六晨跑,是,i801,
photo,摄影俱乐部,,否,,
"""
BAD_TOML = """\
[[club]]
code = "run"
name = "跑团"

[[club]]
code = "Bad Code"
name = "x"
open = "maybe"

[[club]]
code = "run"
name = "又一个"
units = ["nowhere"]
leaders = ["A1234"]
"""


def say(key: str, **kw: object) -> str:
    return RENDERER.label("zh", key, **kw)


def _run(tmp_path: Path, name: str, text: str, capsys) -> tuple[int, str, str]:
    config = make_config(sqlite_url(tmp_path), tmp_path)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    code = bot.cmd_import_clubs(config, path)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _leader(tmp_path: Path) -> None:
    db = Database(sqlite_url(tmp_path))
    with db.writing() as s:
        s.add(Member(telegram_id=77, unit_code="i801", employee_no="A1234", name="队长", status=Status.VERIFIED))


async def test_toml_then_csv_import_create_update_and_name_leaders(tmp_path: Path, capsys) -> None:
    code, out, err = _run(tmp_path, "clubs.toml", '[[club]]\ncode = "x1"\nname = "x"\n', capsys)
    assert code == 0, err
    _leader(tmp_path)
    code, out, err = _run(tmp_path, "clubs.toml", GOOD_TOML, capsys)
    assert code == 0, err
    assert say("cli_clubs_done", created=2, updated=0) in out
    code, out, err = _run(tmp_path, "clubs.toml", GOOD_TOML, capsys)
    assert say("cli_clubs_done", created=0, updated=2) in out
    code, out, err = _run(tmp_path, "clubs.csv", GOOD_CSV, capsys)
    assert code == 0, err
    assert say("cli_clubs_done", created=1, updated=1) in out
    db = Database(sqlite_url(tmp_path))
    with db.reading() as s:
        found = {c.code: c for c in s.exec(select(Club))}
        assert sorted(found) == ["chess", "photo", "run", "x1"]
        assert found["run"].name == "航天跑团（新）" and found["run"].open and found["run"].units == "i801"
        assert not found["photo"].open
        rows = s.exec(select(ClubMember)).all()
        assert [(r.club_id, r.leader) for r in rows] == [(found["run"].id, True)]


async def test_every_problem_is_reported_with_its_line_and_nothing_is_stored(tmp_path: Path, capsys) -> None:
    code, _out, err = _run(tmp_path, "clubs.toml", BAD_TOML, capsys)
    assert code == 1
    assert say("cli_clubs_bad_code", line=5, detail="bad code") in err
    assert say("cli_clubs_bad_bool", line=5, detail="open: maybe") in err
    assert say("cli_clubs_unknown_unit", line=10, detail="nowhere") in err
    assert say("cli_clubs_bad_leader", line=10, detail="A1234") in err
    code, _out, err = _run(tmp_path, "clubs.toml", "[[club]\n", capsys)
    assert code == 1 and "第 1 行" in err
    _code, _out, err = _run(tmp_path, "clubs.csv", "name\nx\n", capsys)
    assert say("cli_clubs_missing_columns", line=1, detail="code") in err
    code, _out, err = _run(tmp_path, "clubs.txt", "", capsys)
    assert code == bot.EXIT_CONFIG
    # A bad file is refused before the database is even opened.
    assert not (tmp_path / "gongshe.db").exists()


async def test_an_unknown_leader_stops_the_whole_import(tmp_path: Path, capsys) -> None:
    code, _out, err = _run(tmp_path, "clubs.toml", GOOD_TOML, capsys)
    assert code == 1 and say("cli_clubs_unknown_leader", line=2, detail="i801:A1234") in err
    db = Database(sqlite_url(tmp_path))
    with db.reading() as s:
        assert s.exec(select(Club)).all() == []
