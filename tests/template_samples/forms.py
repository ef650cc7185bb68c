"""Samples of the answers to a message that is not what a flow's step takes (handlers/menu.py on_media)."""

from __future__ import annotations

from typing import Any


def samples(locale: str) -> dict[str, list[dict[str, Any]]]:
    return {"errors/text_expected": [{}], "errors/photo_expected": [{}]}
