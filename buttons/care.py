"""Buttons of care (心理关爱 · 维权 · 困难帮扶): counselling, counsellors' slots, rights and aid requests."""

from __future__ import annotations

from dataclasses import dataclass

from buttons import Button


@dataclass(frozen=True)
class CareHome(Button, prefix="care:home"):
    pass


@dataclass(frozen=True)
class PickArea(Button, prefix="care:area"):
    area: str


@dataclass(frozen=True)
class Calendar(Button, prefix="care:cal"):
    """A counsellor's free days (day 0) or one day's times (a date ordinal); `replace`: the booking being moved."""

    counsellor_id: int
    area: str
    day: int
    replace: int | None = None


@dataclass(frozen=True)
class PickSlot(Button, prefix="care:slot"):
    slot_id: int
    area: str
    replace: int | None = None


@dataclass(frozen=True)
class MoveTo(Button, prefix="care:move"):
    booking_id: int
    slot_id: int


@dataclass(frozen=True)
class MyBookings(Button, prefix="care:mine"):
    pass


@dataclass(frozen=True)
class ShowBooking(Button, prefix="care:booking"):
    booking_id: int


@dataclass(frozen=True)
class AskCancelBooking(Button, prefix="care:cancel"):
    booking_id: int


@dataclass(frozen=True)
class CancelBooking(Button, prefix="care:cancel_yes"):
    booking_id: int


@dataclass(frozen=True)
class Reschedule(Button, prefix="care:resched"):
    booking_id: int


# --- counsellors ---


@dataclass(frozen=True)
class SlotsHome(Button, prefix="care:slots"):
    pass


@dataclass(frozen=True)
class NewSlots(Button, prefix="care:new"):
    """Offer a single slot ("single") or a weekly pattern ("week")."""

    kind: str


@dataclass(frozen=True)
class ManageSlot(Button, prefix="care:mslot"):
    slot_id: int


@dataclass(frozen=True)
class BlockSlot(Button, prefix="care:block"):
    slot_id: int
    block: int


@dataclass(frozen=True)
class RemoveSlot(Button, prefix="care:remove"):
    slot_id: int


@dataclass(frozen=True)
class CloseBooking(Button, prefix="care:close"):
    booking_id: int
    outcome: str


@dataclass(frozen=True)
class NoteBooking(Button, prefix="care:note"):
    booking_id: int


# --- rights and aid ---


@dataclass(frozen=True)
class HelpHome(Button, prefix="care:help"):
    pass


@dataclass(frozen=True)
class NewRequest(Button, prefix="care:ask"):
    kind: str


@dataclass(frozen=True)
class MyRequests(Button, prefix="care:requests"):
    pass


@dataclass(frozen=True)
class ShowRequest(Button, prefix="care:request"):
    request_id: int


@dataclass(frozen=True)
class Queue(Button, prefix="care:queue"):
    pass


@dataclass(frozen=True)
class HandleRequest(Button, prefix="care:handle"):
    request_id: int


@dataclass(frozen=True)
class Advance(Button, prefix="care:advance"):
    request_id: int
    status: str


@dataclass(frozen=True)
class CareStats(Button, prefix="care:stats"):
    pass


@dataclass(frozen=True)
class EditProfile(Button, prefix="care:profile"):
    pass
