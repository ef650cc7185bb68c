"""Buttons of Broadcasts (宣传与通知): composing, audience, confirmation, progress, /scheduled, Got it."""

from __future__ import annotations

from dataclasses import dataclass

from buttons import Button


@dataclass(frozen=True)
class ShowDraft(Button, prefix="bc:panel"):
    """The draft's panel: audience, buttons, ack, urgent, preview."""

    broadcast_id: int


@dataclass(frozen=True)
class ChooseAudience(Button, prefix="bc:audience"):
    """The audience screen."""

    broadcast_id: int


@dataclass(frozen=True)
class AllUnits(Button, prefix="bc:all_units"):
    """Audience: every unit in scope."""

    broadcast_id: int


@dataclass(frozen=True)
class ToggleYoung(Button, prefix="bc:young"):
    """Audience: only members under 35 (or not)."""

    broadcast_id: int


@dataclass(frozen=True)
class AskButtons(Button, prefix="bc:buttons"):
    """Type the link buttons."""

    broadcast_id: int


@dataclass(frozen=True)
class ToggleAck(Button, prefix="bc:ack"):
    """Add or remove the Got it button."""

    broadcast_id: int


@dataclass(frozen=True)
class ToggleUrgent(Button, prefix="bc:urgent"):
    """Urgent: ignores quiet hours (bureau only)."""

    broadcast_id: int


@dataclass(frozen=True)
class Preview(Button, prefix="bc:preview"):
    """Receive the broadcast as members will."""

    broadcast_id: int


@dataclass(frozen=True)
class SendNow(Button, prefix="bc:send"):
    """Confirmed: send now."""

    broadcast_id: int


@dataclass(frozen=True)
class AskSchedule(Button, prefix="bc:schedule"):
    """Type a date and time to send at."""

    broadcast_id: int


@dataclass(frozen=True)
class Discard(Button, prefix="bc:discard"):
    """Throw the draft away."""

    broadcast_id: int


@dataclass(frozen=True)
class CancelBroadcast(Button, prefix="bc:cancel"):
    """Stop a scheduled or sending broadcast."""

    broadcast_id: int


@dataclass(frozen=True)
class PauseBroadcast(Button, prefix="bc:pause"):
    """Hold a scheduled broadcast."""

    broadcast_id: int


@dataclass(frozen=True)
class ResumeBroadcast(Button, prefix="bc:resume"):
    """Schedule a held broadcast again."""

    broadcast_id: int


@dataclass(frozen=True)
class ShowBroadcast(Button, prefix="bc:show"):
    """A broadcast's card: progress or report."""

    broadcast_id: int


@dataclass(frozen=True)
class ReportCsv(Button, prefix="bc:csv"):
    """The report as a CSV file."""

    broadcast_id: int


@dataclass(frozen=True)
class GotIt(Button, prefix="bc:got_it"):
    """A member's acknowledgement."""

    broadcast_id: int


@dataclass(frozen=True)
class ToggleUnit(Button, prefix="bc:unit"):
    """Audience: add or remove one unit."""

    broadcast_id: int
    unit: str


@dataclass(frozen=True)
class ToggleRole(Button, prefix="bc:role"):
    """Audience: add or remove one role (cadres, volunteers)."""

    broadcast_id: int
    role: str


@dataclass(frozen=True)
class ListBroadcasts(Button, prefix="bc:list"):
    """/scheduled: the list."""

    pass


@dataclass(frozen=True)
class StartBroadcast(Button, prefix="bc:new"):
    """/broadcast from /admin: compose a new broadcast."""

    pass


@dataclass(frozen=True)
class ChooseRepeat(Button, prefix="bc:repeat"):
    """After the time: once, or a recurring rule (weekdays, weekly, monthly)."""

    broadcast_id: int
    rule: str


@dataclass(frozen=True)
class NextCategory(Button, prefix="bc:category"):
    """The draft's category: union news, club news, welfare."""

    broadcast_id: int


@dataclass(frozen=True)
class ToggleMandatory(Button, prefix="bc:mandatory"):
    """Mandatory: reaches members who muted the category (bureau only)."""

    broadcast_id: int


@dataclass(frozen=True)
class MuteMenu(Button, prefix="bc:mutes"):
    """In /me: which broadcast categories a member receives."""

    pass


@dataclass(frozen=True)
class ToggleMute(Button, prefix="bc:mute"):
    """In /me: mute or unmute one category."""

    category: str


@dataclass(frozen=True)
class ToggleClub(Button, prefix="bc:club"):
    """Audience: add or remove the members of one club."""

    broadcast_id: int
    club_id: int


@dataclass(frozen=True)
class ChooseGroups(Button, prefix="bc:groups"):
    """The club groups screen: which linked club groups also get the post."""

    broadcast_id: int


@dataclass(frozen=True)
class ToggleGroup(Button, prefix="bc:group"):
    """Club groups: post in this club's group too (or not)."""

    broadcast_id: int
    club_id: int


@dataclass(frozen=True)
class TogglePin(Button, prefix="bc:pin"):
    """Club groups: pin the post once delivered (or not)."""

    broadcast_id: int
