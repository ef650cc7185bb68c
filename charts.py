"""Bar charts as PNG bytes (matplotlib, Agg), with a font that has the Chinese glyphs.

Used by surveys' results (and by any section that shows numbers as a picture). The font is WenQuanYi Micro Hei,
installed by the project's own setup (`make fonts`, which `make run` and `make test` run first; the Dockerfile
installs it too). Drawing takes tens of milliseconds of CPU: callers run it off
the event loop.
"""

from __future__ import annotations

import io
import textwrap
import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib import font_manager
from matplotlib.figure import Figure

# Where the setup puts the font (Debian's fonts-wqy-microhei), then other CJK fonts a machine may have.
FONT_FILES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)
BAR_COLOR = "#2f6fdb"
WIDTH_INCHES = 6.4
ROW_INCHES = 0.45
DPI = 100
LABEL_WIDTH = 14
# Room for labels of LABEL_WIDTH characters (wrapped) left of the bars, as a share of the width.
LEFT_MARGIN = 0.34
MAX_BARS = 12
# matplotlib's pyplot-free Figure is safe per thread, but font caches are shared: draw one chart at a time.
_LOCK = threading.Lock()


class FontMissing(RuntimeError):
    """No CJK font: run `make fonts`."""


@cache
def font_path() -> Path:
    """The CJK font file charts use."""
    for candidate in FONT_FILES:
        if Path(candidate).is_file():
            return Path(candidate)
    raise FontMissing("no CJK font found: run `make fonts` (installs fonts-wqy-microhei)")


@cache
def _font() -> font_manager.FontProperties:
    path = font_path()
    font_manager.fontManager.addfont(str(path))
    return font_manager.FontProperties(fname=str(path))


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float], *, unit: str = "") -> bytes:
    """A horizontal bar chart (first label on top), each bar with its value; PNG bytes."""
    labels, values = list(labels)[:MAX_BARS], list(values)[:MAX_BARS]
    font = _font()
    height = max(2.0, 1.2 + ROW_INCHES * len(labels))
    with _LOCK:
        figure = Figure(figsize=(WIDTH_INCHES, height), dpi=DPI)
        axes = figure.add_subplot()
        positions = list(range(len(labels)))[::-1]
        bars = axes.barh(positions, values, color=BAR_COLOR, height=0.6)
        axes.set_yticks(positions, ["\n".join(textwrap.wrap(label, LABEL_WIDTH)) or " " for label in labels])
        for tick in axes.get_yticklabels():
            tick.set_fontproperties(font)
        axes.set_title(textwrap.shorten(title, 60, placeholder="…"), fontproperties=font)
        top = max(values, default=0) or 1
        axes.set_xlim(0, top * 1.18)
        for bar, value in zip(bars, values, strict=True):
            text = f"{value:g}{unit}"
            axes.text(bar.get_width() + top * 0.01, bar.get_y() + bar.get_height() / 2, text, va="center")
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
        # Fixed margins (tight_layout would draw the whole figure once more just to measure it).
        figure.subplots_adjust(left=LEFT_MARGIN, right=0.95, top=1 - 0.55 / height, bottom=0.45 / height)
        out = io.BytesIO()
        # Fast compression: a chart is sent once; a few more kilobytes cost less than the CPU.
        figure.savefig(out, format="png", pil_kwargs={"compress_level": 1})
    return out.getvalue()
