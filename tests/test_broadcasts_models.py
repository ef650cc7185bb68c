"""Broadcast models on SQLite and PostgreSQL: scope, once per member, release, cancel, acknowledgements, report."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from models import broadcasts, me, outbox
from models.audience import Audience
from models.broadcasts import BroadcastStatus, QuietHours
from models.errors import BadInput, NotAllowed
from models.members import Role, load_actor
from tests.conftest import ADMIN_ID, NOW, make_member

SHANGHAI = ZoneInfo("Asia/Shanghai")
QUIET = QuietHours(time(22, 0), time(8, 0), SHANGHAI)
UNITS = ["i801", "hk", "i802"]
TODAY = NOW.date()


def ack(broadcast_id: int, locale: str) -> tuple[str, str]:
    return f"bc:got_it:{broadcast_id}", locale


def test_quiet_hours_span_midnight() -> None:
    # 23:30 and 02:00 Beijing are quiet until 08:00; 12:00 is not.
    assert QUIET.until(datetime(2026, 11, 28, 15, 30, tzinfo=UTC)) == datetime(2026, 11, 29, 0, 0, tzinfo=UTC)
    assert QUIET.until(datetime(2026, 11, 28, 18, 0, tzinfo=UTC)) == datetime(2026, 11, 29, 0, 0, tzinfo=UTC)
    assert QUIET.until(datetime(2026, 11, 28, 4, 0, tzinfo=UTC)) is None
    day = QuietHours(time(12, 0), time(13, 0), SHANGHAI)
    assert day.until(datetime(2026, 11, 28, 4, 30, tzinfo=UTC)) == datetime(2026, 11, 28, 5, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("看看 | http://example.org", "broadcast_button_url"),
        ("看看 | javascript:alert(1)", "broadcast_button_url"),
        ("看看 https://example.org", "broadcast_button_format"),
        ("a|https://a.org\nb|https://b.org\nc|https://c.org\nd|https://d.org", "broadcast_too_many_buttons"),
        ("x" * 41 + " | https://a.org", "broadcast_button_label"),
    ],
)
def test_bad_buttons_are_refused(text: str, problem: str) -> None:
    with pytest.raises(BadInput) as refused:
        broadcasts.parse_buttons(text)
    assert refused.value.key == problem


async def test_scope_once_per_member_cancel_ack_report(db) -> None:
    await make_member(db, 2001, "i801", role=Role.CADRE)
    young = await make_member(db, 3001, "i801")
    for telegram_id, unit in ((3002, "i801"), (3003, "hk")):
        await make_member(db, telegram_id, unit)
    with db.writing() as s:
        s.get(type(young), young.id).birth_year = TODAY.year - 20
    with db.writing() as s:
        actor = load_actor(s, 2001, {ADMIN_ID})
        draft = broadcasts.start_draft(s, actor, 2001, 5, "photo", NOW)
        with pytest.raises(NotAllowed):
            broadcasts.set_audience(s, actor, draft.id, Audience(units=("hk",)), UNITS)
        found = broadcasts.send_now(
            s, actor, draft.id, now=NOW, today=TODAY, all_units=UNITS, quiet=QUIET, ack=ack, progress_at=(2001, 9)
        )
        assert found.recipients == 3 and found.status == BroadcastStatus.SENDING
        # Confirming again changes nothing.
        with pytest.raises(BadInput):
            broadcasts.send_now(s, actor, draft.id, now=NOW, today=TODAY, all_units=UNITS, quiet=QUIET, ack=ack)
        broadcast_id = found.id
    with db.writing() as s:
        rows = outbox.claim_batch(s, 10, NOW)
        assert {r.chat_id for r in rows} == {2001, 3001, 3002}
        assert all(r.copy_from_chat_id == 2001 and r.copy_message_id == 5 for r in rows)
        by_chat = {r.chat_id: r for r in rows}
        outbox.mark_sent(s, by_chat[3001].id, 1, NOW)
        outbox.mark_blocked(s, by_chat[3002].id, "forbidden", by_chat[3002].claimed_at)
        outbox.release(s, by_chat[2001].id, NOW, claimed_at=by_chat[2001].claimed_at)
    with db.writing() as s:
        member_3001 = load_actor(s, 3001, set()).member
        assert broadcasts.acknowledge(s, member_3001.id, broadcast_id, NOW) is True
        assert broadcasts.acknowledge(s, member_3001.id, broadcast_id, NOW) is False
        with pytest.raises(BadInput):
            broadcasts.acknowledge(s, load_actor(s, 3003, set()).member.id, broadcast_id, NOW)
        # A member of another unit cannot stop it; its author can, and the unsent copy is withdrawn.
        with pytest.raises(NotAllowed):
            broadcasts.cancel(s, load_actor(s, 3003, set()), broadcast_id, NOW)
        assert broadcasts.cancel(s, load_actor(s, 2001, {ADMIN_ID}), broadcast_id, NOW) == 1
    with db.writing() as s:
        actor = load_actor(s, 2001, {ADMIN_ID})
        found = broadcasts.get(s, actor, broadcast_id)
        progress = broadcasts.progress(s, found)
        assert (progress.delivered, progress.blocked, progress.cancelled, progress.pending) == (1, 1, 1, 0)
        [line] = broadcasts.report(s, actor, broadcast_id, TODAY)
        assert (line.unit, line.recipients, line.delivered, line.blocked, line.acknowledged) == ("i801", 2, 1, 1, 1)
        # 3001 (born 20 years ago) is the one under-35 recipient, and was reached.
        assert (line.young_recipients, line.young_delivered, line.young_share) == (1, 1, 100)
        me.delete_account(s, member_3001.id, NOW, SHANGHAI)
    with db.reading() as s:
        assert broadcasts.report(s, load_actor(s, 2001, {ADMIN_ID}), broadcast_id, TODAY)[0].acknowledged == 0


async def test_scheduled_release_is_once_and_waits_for_quiet_hours(db) -> None:
    await make_member(db, 2001, "hk", role=Role.CADRE, role_unit=None)
    await make_member(db, 3001, "i801")
    at = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)  # 23:00 Beijing
    with db.writing() as s:
        actor = load_actor(s, 2001, set())
        draft = broadcasts.start_draft(s, actor, 2001, 7, "text", NOW)
        with pytest.raises(BadInput) as past:
            broadcasts.schedule(s, actor, draft.id, NOW - timedelta(minutes=1), NOW, UNITS)
        assert past.value.key == "broadcast_time_past"
        broadcasts.schedule(s, actor, draft.id, at, NOW, UNITS)
    with db.writing() as s:
        assert broadcasts.release_due(s, at - timedelta(seconds=1), TODAY, QUIET, ack) == []
        assert broadcasts.release_due(s, at, TODAY, QUIET, ack) == [draft.id]
        assert broadcasts.release_due(s, at, TODAY, QUIET, ack) == []
    with db.writing() as s:
        # Released at 23:00 Beijing: nothing is due before the quiet hours end at 08:00 (00:00 UTC).
        assert outbox.claim_batch(s, 10, at + timedelta(hours=1)) == []
        assert len(outbox.claim_batch(s, 10, datetime(2026, 11, 29, 0, 0, tzinfo=UTC))) == 2


async def test_a_recurring_rule_needs_an_end(db) -> None:
    await make_member(db, 2001, "hk", role=Role.CADRE, role_unit=None)
    at = NOW + timedelta(days=2)
    with db.writing() as s:
        actor = load_actor(s, 2001, set())
        draft = broadcasts.start_draft(s, actor, 2001, 8, "text", NOW)
        for until, problem in ((None, "broadcast_repeat_needs_end"), (TODAY, "broadcast_repeat_end")):
            with pytest.raises(BadInput) as refused:
                broadcasts.schedule(s, actor, draft.id, at, NOW, UNITS, repeat="weekly", until=until, tz=SHANGHAI)
            assert refused.value.key == problem
        found = broadcasts.schedule(
            s, actor, draft.id, at, NOW, UNITS, repeat="monthly", until=TODAY + timedelta(days=90), tz=SHANGHAI
        )
        assert found.status == BroadcastStatus.SCHEDULED and found.repeat == "monthly"


def test_next_run_rules() -> None:
    friday = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)  # 09:00 Beijing
    assert broadcasts.next_run(friday, "weekdays", SHANGHAI) == friday + timedelta(days=3)
    assert broadcasts.next_run(friday, "weekly", SHANGHAI) == friday + timedelta(days=7)
    jan31 = datetime(2027, 1, 31, 1, 0, tzinfo=UTC)
    assert broadcasts.next_run(jan31, "monthly", SHANGHAI) == datetime(2027, 2, 28, 1, 0, tzinfo=UTC)
    dec15 = datetime(2026, 12, 15, 1, 0, tzinfo=UTC)
    assert broadcasts.next_run(dec15, "monthly", SHANGHAI) == datetime(2027, 1, 15, 1, 0, tzinfo=UTC)
