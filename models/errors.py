"""Domain errors: each names the message template (messages/<lang>/errors/<key>.j2) shown to the user."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A rule of the union was broken; the transaction rolls back and the user is told why."""

    key = "generic"

    def __init__(self, key: str | None = None, **params: Any) -> None:
        super().__init__(key or self.key)
        if key:
            self.key = key
        self.params = params


class NotAllowed(DomainError):
    """The current user may not do this."""

    key = "not_allowed"


class NotFound(DomainError):
    """The thing asked for does not exist (any more)."""

    key = "not_found"


class NotRegistered(DomainError):
    """Only verified members may do this."""

    key = "not_registered"


class InsufficientPoints(DomainError):
    """A spend or deduction would take the balance below zero."""

    key = "insufficient_points"


class BadInput(DomainError):
    """The user typed something we cannot use; key says what is wrong."""

    key = "bad_input"
