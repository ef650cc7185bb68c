"""Chart images: real PNGs with one bar per answer, Chinese and English labels, and a font that has the glyphs."""

from __future__ import annotations

import io
import warnings

import pytest
from fontTools.ttLib import TTCollection, TTFont
from PIL import Image

import charts

BAR_RGB = tuple(int(charts.BAR_COLOR[i : i + 2], 16) for i in (1, 3, 5))


def _bars(png: bytes) -> int:
    """Count the bars: runs of the bar colour down the column just right of the axis."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    width, height = image.size
    pixels = image.load()
    best = 0
    for x in range(width // 4, width // 2):
        runs, inside = 0, False
        for y in range(height):
            hit = all(abs(a - b) <= 8 for a, b in zip(pixels[x, y], BAR_RGB, strict=True))
            runs += hit and not inside
            inside = hit
        best = max(best, runs)
    return best


@pytest.mark.parametrize(
    ("title", "labels"),
    [
        ("您最希望工会组织哪类活动？", ["体育运动", "读书会", "亲子活动", "心理讲座", "技能培训"]),
        ("Which activities would you like?", ["Sports", "Reading club", "Family day", "Talks", "Training"]),
    ],
)
def test_a_chart_is_a_png_with_one_bar_per_answer(title, labels):
    for count in (2, 5):
        # matplotlib warns "Glyph ... missing from font" when a label cannot be drawn: that fails here.
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            png = charts.bar_chart(title, labels[:count], [9, 9, 9, 9, 9][:count])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        image = Image.open(io.BytesIO(png))
        assert image.format == "PNG" and image.width >= 600
        assert _bars(png) == count


def test_the_font_has_the_chinese_glyphs():
    path = charts.font_path()
    fonts = TTCollection(str(path)).fonts if path.suffix == ".ttc" else [TTFont(str(path))]
    cmap = fonts[0].getBestCmap()
    assert all(ord(ch) in cmap for ch in "工会在线调查您最希望组织哪类活动满意度")
