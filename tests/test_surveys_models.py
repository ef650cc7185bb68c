"""Survey models on SQLite and PostgreSQL: anonymity that holds over the whole database, the small-group rule,
submit once, and the import file's line-precise errors."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import inspect, text
from sqlmodel import select

from bot import cmd_import_survey
from config import PointsRule
from models import inbox, me, points, surveys
from models.audience import Audience
from models.members import Actor, Member, Status
from models.surveys import Kind, Question, SurveyDraft, SurveyFileError, parse_survey_file
from tests.conftest import ADMIN_ID, NOW, make_config, sqlite_url

TZ = ZoneInfo("Asia/Shanghai")
TODAY = NOW.astimezone(TZ).date()
RULE = PointsRule("survey_answer", 5, 0)
BUREAU = Actor(ADMIN_ID, None, True, frozenset({None}), frozenset())
BATCH = 5
MIN_GROUP = 5
QUESTIONS = (
    Question("最关心什么？", Kind.SINGLE, ("收入", "健康", "子女")),
    Question("打分", Kind.RATING),
    Question("建议", Kind.TEXT),
)


def _survey(db, *, anonymous: bool = True) -> int:
    draft = SurveyDraft(
        title="需求调查",
        opens_at=NOW - timedelta(hours=1),
        closes_at=NOW + timedelta(days=1),
        questions=QUESTIONS,
        audience=Audience(),
        anonymous=anonymous,
        points=5,
    )
    with db.writing() as s:
        return surveys.store_survey(s, BUREAU, draft, ("hq", "i801", "i802"), NOW).id


def _members(db, count: int, unit_of=lambda n: "i801", born=lambda n: 1995) -> list[Member]:
    made = []
    with db.writing() as s:
        for n in range(count):
            member = Member(
                telegram_id=7_000_000 + n,
                unit_code=unit_of(n),
                employee_no=f"EMP{n:04d}",
                name=f"会员{n:04d}",
                status=Status.VERIFIED,
                birth_year=born(n),
            )
            s.add(member)
            made.append(member)
        s.flush()
    return made


def _answer(db, member: Member, survey_id: int, choice: int, rating: int, words: str) -> surveys.Submitted:
    with db.writing() as s:
        surveys.start(s, member, survey_id, NOW, TODAY)
        surveys.choose(s, member, survey_id, 0, choice, NOW)
        surveys.choose(s, member, survey_id, 1, rating, NOW)
        surveys.type_answer(s, member, survey_id, words, NOW)
        return surveys.submit(s, member, survey_id, NOW, TODAY, RULE, BATCH)


def _secret(n: int) -> str:
    """The answer member n types: only the test knows whose it is."""
    return f"秘密建议{n * 7919 % 1000:03d}"


async def test_no_query_over_the_whole_database_links_an_anonymous_answer_to_a_member(db):
    survey_id = _survey(db)
    people = _members(db, 50)
    for n, member in enumerate(people):
        _answer(db, member, survey_id, n % 3, 1 + n % 5, _secret(n))
    identifiers = {m.employee_no for m in people} | {m.name for m in people} | {str(m.telegram_id) for m in people}
    with db.write_engine.connect() as conn:
        # 1. Every row of every table: a row holding an answer holds nothing that names a member.
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')).mappings():
                values = [str(v) for v in row.values() if v is not None]
                if any("秘密建议" in v for v in values):
                    assert table == "survey_answer", table
                    assert not any(ident in v for v in values for ident in identifiers), (table, dict(row))
        # 2. The answers' tables have no member, no time, nothing else shared with the participation rows.
        responses = conn.execute(text("SELECT * FROM survey_response")).mappings().all()
        assert len(responses) == 50
        assert all(r["member_id"] is None and r["submitted_at"] is None for r in responses)
        answer_columns = {c["name"] for c in inspect(conn).get_columns("survey_answer")}
        response_columns = {c["name"] for c in inspect(conn).get_columns("survey_response")}
        assert not {c for c in answer_columns | response_columns if c.endswith("_at") and c != "submitted_at"}
        assert conn.execute(text("SELECT count(*) FROM survey_participation")).scalar_one() == 50
        assert conn.execute(text("SELECT count(*) FROM survey_progress")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM flow_state")).scalar_one() == 0
        # 3. Order: neither the ids nor the physical order of the rows follow the order members submitted in.
        by_member = {_secret(n): n for n in range(len(people))}
        texts = dict(conn.execute(text("SELECT response_id, text FROM survey_answer WHERE question = 2")).all())
        if db.dialect == "postgresql":
            physical = [r[0] for r in conn.execute(text("SELECT id FROM survey_response ORDER BY ctid"))]
        else:
            # WITHOUT ROWID: no hidden insertion counter; the table is stored in the order of its random ids.
            with pytest.raises(Exception, match="rowid"):
                conn.execute(text("SELECT rowid FROM survey_response"))
            physical = [r[0] for r in conn.execute(text("SELECT id FROM survey_response"))]
        by_id = sorted(texts)
        for order in (physical, by_id):
            guessed = sum(1 for position, rid in enumerate(order) if by_member[texts[rid]] == position)
            # A random order gets about 1 in 50 right by chance (and about 1 in 5 within shuffled batches).
            assert guessed <= 25, guessed
        assert by_id != [rid for rid in sorted(texts, key=lambda r: by_member[texts[r]])]
        # 4. PostgreSQL's transaction ids: every answer was written in a batch of at least five.
        if db.dialect == "postgresql":
            batches = conn.execute(text("SELECT xmin::text, count(*) FROM survey_response GROUP BY 1")).all()
            assert all(count >= BATCH for _xmin, count in batches), batches
    # 5. The points are paid once per member, with a key that names the survey and the member, not the answers.
    with db.reading() as s:
        entries = list(s.exec(select(points.LedgerEntry)))
    assert len(entries) == 50 and all(e.idem_key == f"survey:{survey_id}:{e.member_id}" for e in entries)


async def test_an_anonymous_ballot_waits_for_its_batch_and_the_rest_go_at_close(db):
    survey_id = _survey(db)
    people = _members(db, 7)
    mixed = [_answer(db, m, survey_id, 0, 3, "好").mixed for m in people]
    assert mixed == [0, 0, 0, 0, 5, 0, 0]
    with db.reading() as s:
        assert surveys.sealed_surveys(s, NOW) == []
        assert surveys.sealed_surveys(s, NOW + timedelta(days=2)) == [survey_id]
    with db.writing() as s:
        assert surveys.mix(s, survey_id) == 2
        results = surveys.survey_results(s, s.get(surveys.Survey, survey_id), TODAY, MIN_GROUP)
    assert results.responses == 7 and results.respondents == 7 and results.waiting == 0


async def test_submitting_twice_stores_one_response_and_pays_once(db):
    survey_id = _survey(db, anonymous=False)
    (member,) = _members(db, 1)
    assert _answer(db, member, survey_id, 1, 5, "好").points == 5
    with db.writing() as s, pytest.raises(surveys.AlreadyAnswered):
        surveys.submit(s, member, survey_id, NOW, TODAY, RULE, BATCH)
    with db.writing() as s, pytest.raises(surveys.AlreadyAnswered):
        surveys.start(s, member, survey_id, NOW, TODAY)
    with db.reading() as s:
        assert points.balance_of(s, member.id) == 5
        (response,) = s.exec(select(surveys.SurveyResponse)).all()
        assert response.member_id == member.id and response.submitted_at is not None


async def test_groups_under_five_are_hidden_on_screen_and_in_the_csv(db):
    survey_id = _survey(db)
    # 6 young members of i801, 2 older members of i802 (each group's answers differ, to see what leaks).
    people = _members(db, 8, unit_of=lambda n: "i801" if n < 6 else "i802", born=lambda n: 1998 if n < 6 else 1970)
    for n, member in enumerate(people):
        _answer(db, member, survey_id, 0 if n < 6 else 2, 5 if n < 6 else 1, f"意见{n}")
    with db.writing() as s:
        surveys.mix(s, survey_id)
        survey = s.get(surveys.Survey, survey_id)
        results = surveys.survey_results(s, survey, TODAY, MIN_GROUP)
        headers = {k: k for k in ("response", "name", "employee_no", "submitted_at", "unit", "age_band", "group")}
        headers |= {k: k for k in ("respondents", "question", "answer", "count", "hidden")}
        content = surveys.export_csv(s, survey, results, headers)
    groups = {(g.kind, g.key): g for g in results.groups}
    assert groups[("unit", "i801")].respondents == 6 and groups[("unit", "i801")].counts[0] == [6, 0, 0]
    assert groups[("unit", "i802")].respondents is None and groups[("unit", "i802")].counts is None
    assert groups[("age", "under35")].respondents == 6 and groups[("age", "35plus")].respondents is None
    rates = {r.unit_code: r for r in results.rates}
    assert rates["i801"].responded == 6 and rates["i802"].responded is None and rates["i802"].percent is None
    # Overall counts still include everyone.
    assert [b.count for b in results.questions[0].bars] == [6, 0, 2]
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert rows[0] == ["response", "Q1 最关心什么？", "Q2 打分", "Q3 建议"]
    assert not any("i802" in cell for row in rows[1:9] for cell in row)
    breakdown = [row for row in rows[10:] if row]
    assert ["unit:i802", "hidden"] in breakdown and ["age:35plus", "hidden"] in breakdown
    assert ["unit:i801", "6", "Q1", "收入", "6"] in breakdown
    assert not any(row[0] == "unit:i802" and len(row) > 2 for row in breakdown)


GOOD = """\
title = "2026 年职工需求调查"
intro = "约 3 分钟"
opens_at = 2026-11-29T09:00:00
closes_at = 2026-12-05T18:00:00
points = 5

[[question]]
text = "您最希望工会组织哪类活动？"
kind = "多选"
options = ["体育", "读书", "亲子"]
max_choices = 2

[[question]]
text = "满意度"
kind = "rating"
"""

BAD = """\
title = "调查"
opens_at = 2026-11-29T09:00:00
closes_at = "下周"
colour = "red"

[[question]]
text = "选一个"
kind = "single"
options = ["只有一个"]

[[question]]
text = "打分"
kind = "stars"

[[question]]
text = "写点什么"
kind = "text"
max_length = 5000
"""


def test_the_import_file_reports_every_problem_on_its_line():
    with pytest.raises(SurveyFileError) as caught:
        parse_survey_file(BAD, TZ, ("i801",), NOW)
    assert caught.value.problems == [
        (3, "bad_time", "closes_at='下周'"),
        (4, "unknown_key", "colour"),
        (9, "options_count", "options"),
        (13, "bad_kind", "kind='stars'"),
        (18, "out_of_range", "max_length"),
    ]
    draft = parse_survey_file(GOOD, TZ, ("i801",), NOW)
    assert draft.questions[0].kind == Kind.MULTI and draft.questions[0].max_choices == 2
    assert draft.opens_at.hour == 1 and draft.anonymous and draft.points == 5


def test_import_survey_on_the_command_line(tmp_path, capsys):
    config = make_config(sqlite_url(tmp_path), tmp_path)
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text(GOOD.replace("2026-11-29", "2099-11-29").replace("2026-12-05", "2099-12-05"), encoding="utf-8")
    bad.write_text(BAD, encoding="utf-8")
    assert cmd_import_survey(config, bad) == 1
    err = capsys.readouterr().err
    assert "第 4 行：不认识的字段 “colour”" in err and "第 13 行：不认识的题型" in err
    assert cmd_import_survey(config, good) == 0
    assert "已发布调查 #1「2026 年职工需求调查」，共 2 题" in capsys.readouterr().out


async def test_an_update_that_carried_an_answer_is_not_kept_in_the_inbox(db):
    payload = '{"update_id": 5, "message": {"from": {"id": 7000001, "first_name": "A"}, "text": "秘密建议"}}'
    with db.writing() as s:
        inbox.store(s, [(5, payload), (6, payload)], NOW)
        surveys.forget_update(s, 5)
    with db.reading() as s:
        rows = {row.update_id: row.payload for row in s.exec(select(inbox.InboxUpdate))}
    assert rows == {5: "{}", 6: payload}


async def test_deleting_an_account_keeps_submitted_answers_as_statistics_only(db):
    named = _survey(db, anonymous=False)
    people = _members(db, 2)
    _answer(db, people[0], named, 1, 4, "好")
    with db.writing() as s:
        surveys.start(s, people[1], named, NOW, TODAY)
        surveys.choose(s, people[1], named, 0, 2, NOW)
    with db.writing() as s:
        for member in people:
            me.delete_account(s, member.id, NOW, TZ)
    with db.reading() as s:
        (response,) = s.exec(select(surveys.SurveyResponse)).all()
        assert response.member_id is None and response.submitted_at is None
        assert s.exec(select(surveys.SurveyProgress)).all() == []
        results = surveys.survey_results(s, s.get(surveys.Survey, named), TODAY, MIN_GROUP)
    assert results.responses == 1 and [b.count for b in results.questions[0].bars] == [0, 1, 0]


async def test_a_named_surveys_reminder_skips_those_who_answered(db):
    named = _survey(db, anonymous=False)
    people = _members(db, 3)
    _answer(db, people[0], named, 0, 3, "好")
    with db.reading() as s:
        survey = s.get(surveys.Survey, named)
        missing = surveys.recipients(s, survey, TODAY, only_missing=True)
        everyone = surveys.recipients(s, survey, TODAY, only_missing=False)
    assert {row[0] for row in missing} == {people[1].id, people[2].id}
    assert {row[0] for row in everyone} == {m.id for m in people}
