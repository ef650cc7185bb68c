"""Template samples, one module per section, merged by tests/test_templates.py.

A section's module (tests/template_samples/<section>.py) defines:
- ``samples(locale) -> dict[str, list[dict]]``: for each of its templates, the worst-case context first
  (longest values its limits allow, characters to escape, emoji), then one context per other branch;
- optionally ``LABEL_VARS``: every variable its labels use, with a long value (counts as large ints);
- optionally ``CAPTIONS``: its templates sent as a photo's or document's caption (1,024 characters).
The shared helpers (typed, person, AT, BIG, CONFIG, LIMITS, ...) are imported from tests.test_templates.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def modules() -> list[ModuleType]:
    return [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name)
        if not info.name.startswith("_")
    ]
