"""models/audience.py: who an audience reaches, and who may send to it."""

from __future__ import annotations

from datetime import date

import pytest

from models.audience import Audience, AudienceCount, count, in_scope, is_young, members
from models.errors import NotAllowed
from models.members import Actor, Member, RoleGrant, Status

TODAY = date(2026, 11, 28)
UNITS = ("i801", "i802")  # two of the shipped config.toml units (the db fixture seeds them)


def _actor(cadre_units: set[str | None], admin: bool = False) -> Actor:
    return Actor(1, None, admin, frozenset(cadre_units), frozenset({"cadre"}) if cadre_units else frozenset())


def test_audience_survives_json():
    audience = Audience(("i801",), ("volunteer",), True, (3,))
    assert Audience.from_json(audience.to_json()) == audience
    assert Audience.from_json(None) == Audience()


def test_unit_cadre_reaches_only_their_units():
    cadre = _actor({"i801"})
    assert in_scope(cadre, Audience(), UNITS).units == ("i801",)
    assert in_scope(cadre, Audience(("i801",)), UNITS).units == ("i801",)
    with pytest.raises(NotAllowed):
        in_scope(cadre, Audience(("i802",)), UNITS)
    with pytest.raises(NotAllowed):
        in_scope(_actor(set()), Audience(), UNITS)


def test_bureau_cadre_reaches_any_known_unit():
    bureau = _actor({None})
    assert in_scope(bureau, Audience(), UNITS) == Audience()
    assert in_scope(bureau, Audience(("i802",)), UNITS).units == ("i802",)
    with pytest.raises(NotAllowed):
        in_scope(bureau, Audience(("nowhere",)), UNITS)


def test_under_35_counts_by_calendar_year():
    assert is_young(1992, TODAY)
    assert not is_young(1991, TODAY)
    assert not is_young(None, TODAY)


def test_members_and_count(db):
    with db.writing() as session:
        rows = [
            Member(telegram_id=1, unit_code="i801", status=Status.VERIFIED, birth_year=1995),
            Member(telegram_id=2, unit_code="i801", status=Status.VERIFIED, birth_year=1980, blocked_bot=True),
            Member(telegram_id=3, unit_code="i802", status=Status.VERIFIED, birth_year=2000),
            Member(telegram_id=4, unit_code="i801", status=Status.PENDING, birth_year=1995),
            Member(telegram_id=None, unit_code="i801", status=Status.DELETED),
        ]
        session.add_all(rows)
        session.flush()
        session.add(RoleGrant(member_id=rows[2].id, role="volunteer"))
    with db.reading() as session:
        assert count(session, Audience(), TODAY) == AudienceCount(3, 1)
        assert count(session, Audience(("i801",)), TODAY) == AudienceCount(2, 1)
        assert count(session, Audience(under_35=True), TODAY) == AudienceCount(2, 0)
        assert count(session, Audience(roles=("volunteer",)), TODAY) == AudienceCount(1, 0)
        assert count(session, Audience(clubs=(1,)), TODAY) == AudienceCount(0, 0)
        assert [r.telegram_id for r in session.exec(members(Audience(), TODAY))] == [1, 2, 3]
