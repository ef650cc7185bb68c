"""Notes at rest: Fernet-encrypted with the key from the environment (CARE_KEY), so a database copy shows none."""

from __future__ import annotations

from functools import cache

from cryptography.fernet import Fernet, InvalidToken

from models.errors import DomainError


class NotesDisabled(DomainError):
    """No CARE_KEY is configured: notes cannot be kept."""

    key = "care_notes_disabled"


class Sealer:
    """Encrypts and decrypts notes with one key; without a key, notes are disabled."""

    def __init__(self, key: str) -> None:
        self._fernet = Fernet(key.encode()) if key else None

    @property
    def enabled(self) -> bool:
        """Whether notes can be kept."""
        return self._fernet is not None

    def seal(self, note: str) -> str:
        """The note encrypted (NotesDisabled without a key)."""
        if self._fernet is None:
            raise NotesDisabled()
        return self._fernet.encrypt(note.encode()).decode()

    def open(self, token: str | None) -> str | None:
        """The note back, or None (no note, no key, or a note sealed with another key)."""
        if token is None or self._fernet is None:
            return None
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            return None


@cache
def sealer(key: str) -> Sealer:
    """The sealer for a key (one per process)."""
    return Sealer(key)
