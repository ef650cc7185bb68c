"""The in-chat survey builder: audience (chosen units, clubs, under 35), anonymity, times, points, and questions
with a max for multiple choice; forged buttons and bad input change nothing; a member of the audience answers."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlmodel import select

from buttons.forms import FormChoice
from buttons.surveys import EditSurvey, OpenSurvey
from models import surveys
from models.audience import Audience
from models.clubs import Club, ClubMember
from models.errors import NotAllowed
from models.members import Member, Role, load_actor
from models.surveys import SurveyDraft
from tests.conftest import NOW, make_member

UNITS = ("hq", "i801", "i802", "i803", "i804", "i805")
# What each language shows: buttons pressed and phrases looked for.
WORDS = {
    "zh": {
        "surveys": "在线调查",
        "new": "新建调查",
        "skip": "跳过",
        "chosen_units": "选择基层工会",
        "i801": "八〇一所工会",
        "i802": "八〇二所工会",
        "i803": "八〇三所工会",
        "done": "选好了",
        "yes": "是",
        "no": "否",
        "multi": "多选",
        "past": "已经过去",
        "after_open": "必须晚于开始时间",
        "max_error": "1 到 3 之间",
        "not_offered": "不在可选范围",
        "draft": ["最多选 2 项", "八〇一所工会、八〇二所工会", "仅 35 岁以下", "目前可覆盖 2 人"],
        "publish": "发布",
        "published": "已发布",
        "start": "开始填写",
        "too_many": "最多选 2 项",
        "answer_done": "完成本题",
        "submit": "📨 提交",
        "submitted": "已提交",
        "not_for_you": "不面向您",
        "edit": "退回草稿修改",
        "draft_title": "调查草稿：Canteen 食堂",
        "already_open": "已经开始",
    },
    "en": {
        "surveys": "Surveys",
        "new": "New survey",
        "skip": "Skip",
        "chosen_units": "Chosen units",
        "i801": "Institute 801 Union",
        "i802": "Institute 802 Union",
        "i803": "Institute 803 Union",
        "done": "Done",
        "yes": "Yes",
        "no": "No",
        "multi": "Multiple choice",
        "past": "has passed",
        "after_open": "must be after the opening time",
        "max_error": "from 1 to 3",
        "not_offered": "not one you were offered",
        "draft": ["at most 2", "Institute 801 Union, Institute 802 Union", "under 35 only", "reaches 2 members"],
        "publish": "Publish",
        "published": "is published",
        "start": "Start",
        "too_many": "At most 2 choices",
        "answer_done": "Done ➡️",
        "submit": "📨 Submit",
        "submitted": "is submitted",
        "not_for_you": "not for you",
        "edit": "Back to draft to edit",
        "draft_title": "Draft survey: Canteen 食堂",
        "already_open": "has opened",
    },
}


async def _member(db, telegram_id: int, unit: str, birth_year: int, language: str) -> None:
    member = await make_member(db, telegram_id, unit, language=language)
    with db.writing() as s:
        s.get(Member, member.id).birth_year = birth_year


async def _cadre(db, telegram_id: int, language: str, *, bureau: bool) -> None:
    """A bureau cadre (every unit) or a cadre of unit i801 only."""
    await make_member(db, telegram_id, "i801", language=language, role=Role.CADRE, role_unit=None if bureau else "same")


@pytest.mark.parametrize("language", ["zh", "en"])
async def test_a_cadre_builds_a_survey_for_chosen_units_under_35_and_only_its_audience_answers(bot, language):
    w = WORDS[language]
    await _cadre(bot.db, 9701, language, bureau=True)
    await _member(bot.db, 9702, "i801", 2000, language)  # in the audience
    await _member(bot.db, 9703, "i802", 1998, language)  # in the audience
    await _member(bot.db, 9704, "i801", 1970, language)  # chosen unit, but over 35
    await _member(bot.db, 9705, "i803", 2000, language)  # young, in the cadre's scope, unit not chosen
    cadre = bot.user(9701)
    await cadre.send("/admin")
    await cadre.click(w["surveys"])
    await cadre.click(w["new"])
    await cadre.send("Canteen 食堂")
    await cadre.click(w["skip"])
    await cadre.click(w["chosen_units"])
    await cadre.click(w["i801"])
    await cadre.click(w["i802"])
    await cadre.click(w["done"])
    await cadre.click(w["yes"])  # under 35 only
    await cadre.click(w["no"])  # named
    await cadre.send("2026-11-27 09:00")
    assert w["past"] in cadre.last.text
    await cadre.send("2026-11-29 09:00")
    await cadre.send("2026-11-29 08:00")
    assert w["after_open"] in cadre.last.text
    await cadre.send("2026-12-05 18:00")
    await cadre.send("5")
    await cadre.send("Which days?")
    await cadre.click(w["multi"])
    await cadre.send("Mon\nTue\nWed")
    await cadre.send("5")
    assert w["max_error"] in cadre.last.text
    await cadre.send("2")
    await cadre.click(w["yes"])  # required
    for phrase in w["draft"]:
        assert phrase in cadre.last.text, phrase
    with bot.db.reading() as s:
        (survey,) = s.exec(select(surveys.Survey)).all()
    assert survey.target == Audience(units=("i801", "i802"), under_35=True)
    assert survey.question_list[0].max_choices == 2 and not survey.anonymous
    await cadre.click(w["publish"])
    assert w["published"] in cadre.last.text and w["draft"][-1] in cadre.last.text
    # Until it opens it can go back to a draft, be edited and published again.
    await cadre.click(w["edit"])
    assert w["draft_title"] in cadre.last.text
    with bot.db.reading() as s:
        assert s.get(surveys.Survey, survey.id).status == "draft"
    await cadre.click(w["publish"])
    assert w["published"] in cadre.last.text

    bot.clock.advance(days=1, hours=2)
    await cadre.press(EditSurvey(survey.id).pack())
    assert w["already_open"] in cadre.last_answer()
    with bot.db.reading() as s:
        assert s.get(surveys.Survey, survey.id).status == "published"
    member = bot.user(9702)
    await member.send("/surveys")
    await member.click("Canteen 食堂")
    await member.click(w["start"])
    await member.click("Mon")
    await member.click("Tue")
    await member.click("Wed")
    assert w["too_many"] in member.last_answer()
    await member.click(w["answer_done"])
    await member.click(w["submit"])
    assert w["submitted"] in member.last.text
    with bot.db.reading() as s:
        (response,) = s.exec(select(surveys.SurveyResponse)).all()
        answers = s.exec(select(surveys.tables.SurveyAnswer)).all()
    assert response.member_id is not None and sorted(a.item for a in answers) == [0, 1]
    # Members outside the audience neither see it listed nor open it with a forged button.
    for outside in (9704, 9705):
        other = bot.user(outside)
        await other.send("/surveys")
        assert "Canteen 食堂" not in other.last.text
        await other.press(OpenSurvey(survey.id).pack())
        assert w["not_for_you"] in other.last_answer()


@pytest.mark.parametrize("language", ["zh", "en"])
async def test_a_forged_unit_button_outside_the_cadres_scope_is_refused(bot, language):
    w = WORDS[language]
    await _cadre(bot.db, 9721, language, bureau=False)
    cadre = bot.user(9721)
    await cadre.send("/admin")
    await cadre.click(w["surveys"])
    await cadre.click(w["new"])
    await cadre.send("Canteen 食堂")
    await cadre.click(w["skip"])
    await cadre.click(w["chosen_units"])
    labels = str(cadre.last.labels)
    assert w["i801"] in labels and w["i802"] not in labels
    # A forged button for a unit outside the cadre's scope: a clear answer, nothing ticked, no Done offered.
    await cadre.press(FormChoice("survey_new", "units", "i804").pack())
    assert w["not_offered"] in cadre.last_answer()
    assert "☑️" not in str(cadre.last.labels) and w["done"] not in str(cadre.last.labels)
    await cadre.click(w["i801"])
    assert "☑️" in str(cadre.last.labels)
    await cadre.press(FormChoice("survey_new", "units", "i802").pack())
    assert w["not_offered"] in cadre.last_answer()
    await cadre.click(w["done"])
    await cadre.click(w["no"])
    await cadre.click(w["yes"])
    await cadre.send("2026-11-29 09:00")
    await cadre.send("2026-12-05 18:00")
    await cadre.send("0")
    with bot.db.reading() as s:
        (survey,) = s.exec(select(surveys.Survey)).all()
    assert survey.target.units == ("i801",)


async def test_a_forged_unit_or_club_outside_scope_is_refused_by_the_model(db):
    await _cadre(db, 9711, "zh", bureau=False)
    draft = SurveyDraft("t", NOW + timedelta(hours=1), NOW + timedelta(days=1), (), audience=Audience(units=("i804",)))
    with db.writing() as s:
        actor = load_actor(s, 9711, ())
        with pytest.raises(NotAllowed):
            surveys.create_draft(s, actor, draft, UNITS, NOW)
        with pytest.raises(NotAllowed):
            surveys.create_draft(s, actor, replace(draft, audience=Audience(clubs=(424242,))), UNITS, NOW)
    with db.reading() as s:
        assert s.exec(select(func.count()).select_from(surveys.Survey)).one() == 0


async def test_a_survey_for_a_club_reaches_its_members_only(bot):
    await _cadre(bot.db, 9731, "en", bureau=True)
    inside = await make_member(bot.db, 9732, "i802", language="en")
    await make_member(bot.db, 9733, "i802", language="en")
    with bot.db.writing() as s:
        club = Club(code="RUN", name="Runners")
        s.add(club)
        s.flush()
        club_id = club.id
        s.add(ClubMember(club_id=club_id, member_id=inside.id))
    cadre = bot.user(9731)
    await cadre.send("/admin")
    await cadre.click("Surveys")
    await cadre.click("New survey")
    await cadre.send("Club survey")
    await cadre.click("Skip")
    await cadre.click("Chosen clubs")
    await cadre.click("Runners")
    await cadre.click("Done")
    await cadre.click("No")
    await cadre.click("Yes")
    await cadre.send("2026-11-29 09:00")
    await cadre.send("2026-12-05 18:00")
    await cadre.send("0")
    await cadre.send("How far do you run?")
    await cadre.click("1–5 rating")
    await cadre.click("Yes")
    assert "clubs: Runners" in cadre.last.text and "reaches 1 member today" in cadre.last.text
    await cadre.click("Publish")
    bot.clock.advance(days=1, hours=2)
    await bot.user(9732).send("/surveys")
    assert "Club survey" in bot.user(9732).last.text
    await bot.user(9733).send("/surveys")
    assert "Club survey" not in bot.user(9733).last.text


async def test_a_draft_s_settings_are_edited_and_its_last_question_removed(bot):
    await _cadre(bot.db, 9741, "en", bureau=True)
    cadre = bot.user(9741)
    await cadre.send("/admin")
    await cadre.click("Surveys")
    await cadre.click("New survey")
    await cadre.send("First title")
    await cadre.click("Skip")
    await cadre.click("Chosen units")
    await cadre.click("Institute 802 Union")
    await cadre.click("Done")
    await cadre.click("Yes")
    await cadre.click("Yes")
    await cadre.send("2026-11-29 09:00")
    await cadre.send("2026-12-05 18:00")
    await cadre.send("3")
    await cadre.send("Rate the canteen")
    await cadre.click("1–5 rating")
    await cadre.click("Yes")
    assert "Institute 802 Union" in cadre.last.text and "1. Rate the canteen" in cadre.last.text
    await cadre.click("Edit settings")
    await cadre.send("Second title")
    await cadre.click("Skip")
    await cadre.click("Everyone in my scope")
    await cadre.click("No")
    await cadre.click("No")
    await cadre.send("2026-11-30 09:00")
    await cadre.send("2026-12-06 18:00")
    await cadre.send("7")
    assert "Draft survey: Second title" in cadre.last.text and "everyone in my scope" in cadre.last.text
    assert "1. Rate the canteen" in cadre.last.text
    with bot.db.reading() as s:
        (survey,) = s.exec(select(surveys.Survey)).all()
    assert (survey.title, survey.points, survey.anonymous, survey.target) == ("Second title", 7, False, Audience())
    await cadre.click("Remove last question")
    assert "No questions yet" in cadre.last.text
    await cadre.press(f"sv:rm_q:{survey.id}")
    assert "no questions yet" in cadre.last_answer()
