"""Ideas on SQLite and PostgreSQL: upvotes once per member under concurrency, one step per press, points once,
visibility, and what deleting an account leaves."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func
from sqlmodel import col, select

from config import PointsRule
from models import ideas, me, points
from models.db import Database
from models.errors import DomainError
from models.ideas import Idea, IdeaComment, IdeaDraft, IdeaList, IdeaStatus, IdeaUpvote
from models.members import Actor, Member, Status
from models.points import LedgerEntry

NOW = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)
DAY = date(2026, 11, 28)
TZ = ZoneInfo("Asia/Shanghai")
RULE = PointsRule("idea_adopted", 50, 0)
_ids = itertools.count(800_000)


def actor_of(member: Member | None, cadre_units: frozenset[str | None] = frozenset(), admin: bool = False) -> Actor:
    return Actor(member.telegram_id if member else next(_ids), member, admin, cadre_units, frozenset())


async def make_members(db: Database, count: int, unit: str = "i801") -> list[Member]:
    with db.writing() as s:
        people = []
        for _ in range(count):
            tid = next(_ids)
            people.append(
                Member(
                    telegram_id=tid, unit_code=unit, employee_no=f"I{tid}", name=f"会员{tid}", status=Status.VERIFIED
                )
            )
        s.add_all(people)
        s.flush()
    return people


async def make_idea(db: Database, author: Member, unit: str | None = "i801") -> Idea:
    with db.writing() as s:
        return ideas.submit(s, author, IdeaDraft("更好的班车", "增加一班 18:30 的班车。", unit), NOW)


def upvote_rows(db: Database, idea_id: int) -> int:
    with db.reading() as s:
        return s.exec(select(func.count()).select_from(IdeaUpvote).where(col(IdeaUpvote.idea_id) == idea_id)).one()


def stored(db: Database, idea_id: int) -> Idea:
    with db.reading() as s:
        return s.get(Idea, idea_id)


async def test_concurrent_upvotes_count_once_per_member(db):
    author, *people = await make_members(db, 41)
    idea = await make_idea(db, author)
    presses = people * 3  # every member presses three times, all at once, in a shuffled order
    random.Random(13).shuffle(presses)

    async def press(m: Member) -> bool:
        return await db.write(lambda s: ideas.upvote(s, m, actor_of(m), idea.id, NOW))

    added = Counter(await asyncio.gather(*(press(m) for m in presses)))
    assert added[True] == 40 and added[False] == 80
    assert stored(db, idea.id).upvotes == 40 == upvote_rows(db, idea.id)

    # Half take theirs back while the other half press again: the counter still equals the rows.
    async def take_back(m: Member) -> bool:
        return await db.write(lambda s: ideas.take_back(s, m, actor_of(m), idea.id))

    leaving, staying = people[:20], people[20:]
    moves = [take_back(m) for m in leaving + leaving] + [press(m) for m in staying]
    results = await asyncio.gather(*moves)
    assert sum(results[:40]) == 20  # each upvote taken back once
    assert not any(results[40:])  # already upvoted
    assert stored(db, idea.id).upvotes == 20 == upvote_rows(db, idea.id)


async def test_two_cadres_adopting_at_once_move_it_once_and_pay_once(db):
    author, cadre_a, cadre_b = await make_members(db, 3)
    idea = await make_idea(db, author)
    actors = [actor_of(cadre_a, frozenset({"i801"})), actor_of(cadre_b, frozenset({None}))]
    with db.writing() as s:
        ideas.move(s, actors[0], idea.id, IdeaStatus.REVIEWING, NOW, DAY, RULE)

    async def adopt(actor: Actor) -> str:
        try:
            moved = await db.write(lambda s: ideas.move(s, actor, idea.id, IdeaStatus.ADOPTED, NOW, DAY, RULE))
            return f"awarded {moved.awarded}"
        except DomainError as exc:
            return exc.key

    outcomes = Counter(await asyncio.gather(*(adopt(a) for a in actors * 4)))
    assert outcomes == Counter({"awarded 50": 1, "idea_move_passed": 7})
    with db.reading() as s:
        paid = s.exec(select(LedgerEntry).where(col(LedgerEntry.rule) == "idea_adopted")).all()
        assert [(e.member_id, e.delta) for e in paid] == [(author.id, 50)]
        assert points.balance_of(s, author.id) == 50 == points.ledger_sum(s, author.id)
    assert stored(db, idea.id).status == IdeaStatus.ADOPTED


async def test_who_sees_and_who_decides(db):
    author, colleague = await make_members(db, 2, "i801")
    [outsider] = await make_members(db, 1, "i802")
    unit_idea = await make_idea(db, author, "i801")
    bureau_idea = await make_idea(db, author, None)
    unit_cadre = actor_of(None, frozenset({"i801"}))
    other_cadre = actor_of(None, frozenset({"i802"}))
    bureau = actor_of(None, frozenset({None}))
    with db.reading() as s:

        def seen(actor: Actor) -> set[int]:
            return {r.idea.id for r in ideas.list_ideas(s, actor, IdeaList.LATEST, 50, 0)}

        assert seen(actor_of(colleague)) == {unit_idea.id, bureau_idea.id}
        assert seen(actor_of(outsider)) == {bureau_idea.id}
        assert seen(other_cadre) == {bureau_idea.id}
        assert seen(unit_cadre) == {unit_idea.id, bureau_idea.id}
        assert {r.idea.id for r in ideas.list_ideas(s, unit_cadre, IdeaList.QUEUE, 50, 0)} == {unit_idea.id}
        assert {r.idea.id for r in ideas.list_ideas(s, bureau, IdeaList.QUEUE, 50, 0)} == {unit_idea.id, bureau_idea.id}
        assert ideas.list_ideas(s, actor_of(colleague), IdeaList.QUEUE, 50, 0) == []
        with pytest.raises(DomainError) as refused:
            ideas.card(s, actor_of(outsider), unit_idea.id)
        assert refused.value.key == "idea_unknown"
        assert ideas.card(s, unit_cadre, unit_idea.id).moves == (IdeaStatus.REVIEWING, IdeaStatus.DECLINED)
        assert ideas.card(s, unit_cadre, bureau_idea.id).moves == ()
    for actor, idea_id, key in (
        (actor_of(colleague), unit_idea.id, "not_allowed"),
        (other_cadre, unit_idea.id, "idea_unknown"),
        (unit_cadre, bureau_idea.id, "not_allowed"),
    ):
        with pytest.raises(DomainError) as refused, db.writing() as s:
            ideas.move(s, actor, idea_id, IdeaStatus.REVIEWING, NOW, DAY, RULE)
        assert refused.value.key == key
    assert {stored(db, i).status for i in (unit_idea.id, bureau_idea.id)} == {IdeaStatus.NEW}
    # A member submits for their own unit or bureau-wide, never for another unit.
    with pytest.raises(DomainError) as refused, db.writing() as s:
        ideas.submit(s, outsider, IdeaDraft("x", "y", "i801"), NOW)
    assert refused.value.key == "not_allowed"


async def test_bad_texts_are_refused_with_their_limits(db):
    [author] = await make_members(db, 1)
    for draft, key in (
        (IdeaDraft("  ", "y", None), "idea_title_empty"),
        (IdeaDraft("t" * (ideas.TITLE_MAX + 1), "y", None), "idea_title_too_long"),
        (IdeaDraft("t", "", None), "idea_description_empty"),
        (IdeaDraft("t", "d" * (ideas.DESCRIPTION_MAX + 1), None), "idea_description_too_long"),
    ):
        with pytest.raises(DomainError) as refused, db.writing() as s:
            ideas.submit(s, author, draft, NOW)
        assert refused.value.key == key
    with db.reading() as s:
        assert s.exec(select(Idea)).all() == []


async def test_deleting_an_account_keeps_ideas_without_the_name_and_deletes_comments(db):
    author, other = await make_members(db, 2)
    idea = await make_idea(db, author)
    with db.writing() as s:
        ideas.add_comment(s, author, actor_of(author), idea.id, "我自己的补充", NOW)
        ideas.add_comment(s, other, actor_of(other), idea.id, "赞同", NOW)
        ideas.upvote(s, other, actor_of(other), idea.id, NOW)
        exported = me.export_member(s, author.id)
    assert [i["title"] for i in exported["ideas"]] == ["更好的班车"]
    assert [c["text"] for c in exported["idea_comments"]] == ["我自己的补充"]
    with db.writing() as s:
        me.delete_account(s, author.id, NOW, TZ)
    with db.reading() as s:
        card = ideas.card(s, actor_of(other), idea.id)
        assert card.author is None and card.idea.description == "增加一班 18:30 的班车。"
        assert [c.comment.text for c in ideas.comments(s, actor_of(other), idea.id, 10, 0)] == ["赞同"]
        assert s.exec(select(IdeaComment).where(col(IdeaComment.member_id) == author.id)).all() == []
        assert card.idea.upvotes == 1
    # Adopted after the author left: nobody is paid, and the author (no chat any more) is not told.
    bureau = actor_of(None, frozenset({None}))
    with db.writing() as s:
        ideas.move(s, bureau, idea.id, IdeaStatus.REVIEWING, NOW, DAY, RULE)
        moved = ideas.move(s, bureau, idea.id, IdeaStatus.ADOPTED, NOW, DAY, RULE)
    assert moved.awarded == 0 and [r.member_id for r in moved.recipients] == [other.id]


async def test_withdrawing_and_a_first_step_at_once_leave_one_outcome(db):
    people = await make_members(db, 12)
    cadre = actor_of(None, frozenset({"i801"}))
    made = [await make_idea(db, m) for m in people]

    async def withdraw(m: Member, idea_id: int) -> str:
        try:
            await db.write(lambda s: ideas.withdraw(s, m, idea_id))
            return "withdrawn"
        except DomainError as exc:
            return exc.key

    async def review(idea_id: int) -> str:
        try:
            await db.write(lambda s: ideas.move(s, cadre, idea_id, IdeaStatus.REVIEWING, NOW, DAY, RULE))
            return "moved"
        except DomainError as exc:
            return exc.key

    races = []
    for i, (m, idea) in enumerate(zip(people, made, strict=True)):
        pair = [withdraw(m, idea.id), review(idea.id)]
        races.extend(pair if i % 2 else pair[::-1])
    outcomes = await asyncio.gather(*races)
    with db.reading() as s:
        left = {i.id: i.status for i in s.exec(select(Idea))}
    for i, idea in enumerate(made):
        pair = outcomes[2 * i : 2 * i + 2]
        withdrawn, reviewed = pair if i % 2 else pair[::-1]
        if idea.id in left:
            assert (withdrawn, reviewed, left[idea.id]) == ("idea_not_withdrawable", "moved", IdeaStatus.REVIEWING)
        else:
            assert (withdrawn, reviewed) == ("withdrawn", "idea_unknown")
