"""Typed commands to intents, through the phrases in the language packs (the same data voice uses)."""

from __future__ import annotations

from collections.abc import Iterable

from voicecoach.language import Pack


def normalise(text: str) -> str:
    return " ".join(text.strip().lower().replace(",", " ").replace(".", " ").split())


def match_text(text: str, packs: Iterable[Pack], state: str) -> str | None:
    """The intent a typed line means in this state, or None. Every pack is tried: "paus" and "pause" both work."""
    wanted = normalise(text)
    for pack in packs:
        for command in pack.commands:
            if command.phrase == wanted and state in command.states:
                return command.intent
    return None
