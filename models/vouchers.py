"""Voucher codes and their QR images: pure functions, no database.

A code is 8 characters from an alphabet without the look-alikes 0/O, 1/I/L, so it can be read
aloud or typed from a phone screen without doubt (31**8 ≈ 8.5e11 codes). The QR image holds the
deep link https://t.me/<bot>?start=r_<code>, which opens the bot at the redeem step for a cadre.
"""

from __future__ import annotations

import io
import re
import secrets

import qrcode
from qrcode.image.pil import PilImage

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8
DEEP_LINK_PREFIX = "r_"
CODE_PATTERN = re.compile(rf"^[{ALPHABET}]{{{CODE_LENGTH}}}$")


def new_code() -> str:
    """A fresh random voucher code (the caller retries on the rare collision)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(raw: str) -> str | None:
    """A code as typed or scanned (spaces, dashes, lower case, r_ prefix) in canonical form, or None."""
    text = raw.strip()
    if text.lower().startswith(DEEP_LINK_PREFIX):
        text = text[len(DEEP_LINK_PREFIX) :]
    code = re.sub(r"[\s-]", "", text).upper()
    return code if CODE_PATTERN.match(code) else None


def deep_link(code: str, bot_username: str) -> str:
    """The t.me link that opens the bot at this voucher's redeem step."""
    return f"https://t.me/{bot_username}?start={DEEP_LINK_PREFIX}{code}"


def voucher_qr_png(code: str, bot_username: str) -> bytes:
    """A PNG image of the QR code for the voucher's deep link."""
    # A fixed mask pattern skips trying all eight (any mask scans; this one is several times cheaper to draw).
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=10, border=4, mask_pattern=0)
    qr.add_data(deep_link(code, bot_username))
    qr.make(fit=True)
    image = qr.make_image(image_factory=PilImage)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


# A photo reference stored instead of an image (outbox rows, queued replies): the sender draws the QR image
# when it sends, off the event loop, so neither the write transaction nor the loop pays for drawing it.
QR_REF_PREFIX = "qr:"


def qr_ref(code: str) -> str:
    """The photo reference for this voucher's QR image."""
    return f"{QR_REF_PREFIX}{code}"


def code_of_qr_ref(photo: str | bytes | None) -> str | None:
    """The voucher code of a QR photo reference, or None for any other photo."""
    if isinstance(photo, str) and photo.startswith(QR_REF_PREFIX):
        return photo[len(QR_REF_PREFIX) :]
    return None
