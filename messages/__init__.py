"""The one renderer: Jinja2 templates per locale (messages/zh, messages/en) and button labels."""

from __future__ import annotations

import os
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template

MESSAGES_DIR = Path(__file__).resolve().parent
LOCALES = ("zh", "en")
DEFAULT_LOCALE = "zh"


def pick_locale(language: str | None) -> str:
    """A supported locale for a member's setting or a Telegram language_code (zh otherwise)."""
    if language:
        short = language.split("-")[0].lower()
        if short in LOCALES:
            return short
    return DEFAULT_LOCALE


class Renderer:
    """Renders message templates (HTML, autoescaped) and button labels (plain text)."""

    def __init__(self, directory: Path = MESSAGES_DIR) -> None:
        self.directory = directory
        self.env = Environment(
            loader=FileSystemLoader(str(directory)),
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
            undefined=StrictUndefined,
            keep_trailing_newline=False,
            # Templates ship with the code: no os.stat per render (GONGSHE_RELOAD_TEMPLATES=1 while editing them).
            auto_reload=os.environ.get("GONGSHE_RELOAD_TEMPLATES") == "1",
        )
        # Button labels and command descriptions are sent as plain text, so they are not escaped.
        self.plain = Environment(undefined=StrictUndefined, autoescape=False)
        self._labels = {loc: self._load_labels(loc) for loc in LOCALES}

    def _load_labels(self, locale: str) -> dict[str, str]:
        """Merge messages/<locale>/labels/*.toml (one file per section); a key defined twice is an error."""
        labels: dict[str, str] = {}
        for path in sorted((self.directory / locale / "labels").glob("*.toml")):
            with path.open("rb") as fh:
                for key, value in tomllib.load(fh).items():
                    if key in labels:
                        raise ValueError(f"label {key!r} defined twice ({path.name})")
                    labels[key] = value
        return labels

    def render(self, locale: str, name: str, /, **context: Any) -> str:
        """Render messages/<locale>/<name>.j2 with the context."""
        template = self.env.get_template(f"{pick_locale(locale)}/{name}.j2")
        return template.render(locale=locale, **context).strip()

    def label(self, locale: str, key: str, /, **context: Any) -> str:
        """A button label or short text from messages/<locale>/labels/*.toml."""
        return self._label_template(pick_locale(locale), key).render(**context)

    @cache  # noqa: B019  (one renderer lives for the whole process)
    def _label_template(self, locale: str, key: str) -> Template:
        return self.plain.from_string(self._labels[locale][key])

    def label_keys(self, locale: str) -> set[str]:
        """Every label defined for a locale."""
        return set(self._labels[locale])

    def template_names(self, locale: str) -> set[str]:
        """Every message template of a locale, as names for render()."""
        root = self.directory / locale
        return {str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.j2")}
