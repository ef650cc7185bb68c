"""Certificates (证书) as PNG images drawn with Pillow: plain Python, no Telegram.

Chinese text needs a font with CJK glyphs. None ships with the project yet: the certificate uses the configured
font (config [community] certificate_font), else the first CJK font found in the usual system places, else DejaVu
Sans. A line the chosen font cannot draw (e.g. a Chinese name with DejaVu) is left off the image rather than drawn
as empty boxes; the caption sent with it always carries the same words.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 1200, 850
MARGIN = 70
MIN_SIZE = 16
CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "C:/Windows/Fonts/msyh.ttc",
)
FALLBACK_FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "DejaVuSans.ttf")
# A character no font draws: what a missing glyph looks like in the chosen font.
MISSING = "\U000effff"
GOLD, INK, PAPER = (184, 134, 11), (40, 40, 60), (255, 250, 235)


@dataclass(frozen=True)
class Lines:
    """What the certificate says, top to bottom (already in the member's language)."""

    heading: str
    name: str
    body: str
    festival: str
    footer: str


def font_path(configured: str = "") -> str | None:
    """The font to draw with: the configured one, a CJK one found on this machine, else DejaVu (None: Pillow's)."""
    for candidate in (configured, *CJK_FONTS, *FALLBACK_FONTS):
        if candidate and Path(candidate).is_file():
            return candidate
    try:
        ImageFont.truetype(FALLBACK_FONTS[-1], 10)
        return FALLBACK_FONTS[-1]
    except OSError:
        return None


def _font(path: str | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.truetype(path, size) if path else ImageFont.load_default()


def drawable(font: ImageFont.FreeTypeFont | ImageFont.ImageFont, text: str) -> bool:
    """Whether every visible character of `text` has a glyph in this font."""
    if not isinstance(font, ImageFont.FreeTypeFont):
        return text.isascii()
    missing = _glyph(font, MISSING)
    return all(ch.isspace() or _glyph(font, ch) != missing for ch in set(text))


def _glyph(font: ImageFont.FreeTypeFont, ch: str) -> bytes:
    mask = font.getmask(ch)
    return bytes(mask) + bytes(str(mask.size), "ascii")


def draw(lines: Lines, configured_font: str = "") -> bytes:
    """The certificate as PNG bytes."""
    path = font_path(configured_font)
    image = Image.new("RGB", (WIDTH, HEIGHT), PAPER)
    pen = ImageDraw.Draw(image)
    pen.rectangle((20, 20, WIDTH - 20, HEIGHT - 20), outline=GOLD, width=8)
    pen.rectangle((40, 40, WIDTH - 40, HEIGHT - 40), outline=GOLD, width=2)
    y = 110
    for text, size, colour in (
        (lines.heading, 72, GOLD),
        (lines.name, 64, INK),
        (lines.body, 34, INK),
        (lines.festival, 40, INK),
        (lines.footer, 28, INK),
    ):
        step, font = size, _font(path, size)
        # A long festival title or name gets smaller until it fits between the borders.
        while size > MIN_SIZE and pen.textlength(text, font=font) > WIDTH - 2 * MARGIN:
            size -= 4
            font = _font(path, size)
        if text and drawable(font, text):
            width = pen.textlength(text, font=font)
            pen.text(((WIDTH - width) / 2, y), text, font=font, fill=colour)
        y += step + 70
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
