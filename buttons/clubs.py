"""Buttons of clubs (星协俱乐部): the list and cards, joining, leaders' requests and member lists, cadres' clubs."""

from __future__ import annotations

from dataclasses import dataclass

from buttons import Button


@dataclass(frozen=True)
class ClubList(Button, prefix="club:list"):
    page: int | None = None


@dataclass(frozen=True)
class ShowClub(Button, prefix="club:show"):
    club_id: int


@dataclass(frozen=True)
class JoinClub(Button, prefix="club:join"):
    """Join an open club, or ask to join one that needs a leader's approval."""

    club_id: int


@dataclass(frozen=True)
class LeaveClub(Button, prefix="club:leave"):
    """Leave the club, or withdraw my request."""

    club_id: int


@dataclass(frozen=True)
class ClubRequests(Button, prefix="club:reqs"):
    club_id: int


@dataclass(frozen=True)
class DecideRequest(Button, prefix="club:decide"):
    """A leader's answer to a request: approve 1 or 0."""

    club_id: int
    member_id: int
    approve: int


@dataclass(frozen=True)
class ClubMembersCsv(Button, prefix="club:csv"):
    club_id: int


@dataclass(frozen=True)
class AdminClubs(Button, prefix="club:admin"):
    pass


@dataclass(frozen=True)
class NewClub(Button, prefix="club:new"):
    pass


@dataclass(frozen=True)
class ManageClub(Button, prefix="club:manage"):
    club_id: int


@dataclass(frozen=True)
class NameLeader(Button, prefix="club:leader"):
    club_id: int


@dataclass(frozen=True)
class Announce(Button, prefix="club:announce"):
    """A leader types an announcement for the club's group."""

    club_id: int


@dataclass(frozen=True)
class RemoveLeader(Button, prefix="club:unleader"):
    """A cadre takes a member's leader role in the club away (they stay a member)."""

    club_id: int
    member_id: int


@dataclass(frozen=True)
class ClubMembers(Button, prefix="club:members"):
    """A leader's list of the club's members, with a Remove button for each (leaders excepted)."""

    club_id: int
    page: int | None = None


@dataclass(frozen=True)
class RemoveMember(Button, prefix="club:rm"):
    """A leader asks to remove a member: the confirmation."""

    club_id: int
    member_id: int


@dataclass(frozen=True)
class ConfirmRemoveMember(Button, prefix="club:rm_ok"):
    """A leader confirms removing a member (from the club and its group)."""

    club_id: int
    member_id: int
