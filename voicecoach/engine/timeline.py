"""Lays out a set as a timeline of spoken cues. Pure: no I/O, no clock; clip lengths are injected.

Rules of the layout:
- a hold starts with the squeeze cue; in a hold of up to COUNTED_MAX_S seconds the count word for k
  lands exactly k seconds after it, so "fem" is heard 5 s into a 5 s hold;
- longer holds and rests announce the time left (from the pack's table) and count down the last
  seconds, rather than counting every second;
- the announcement of the next repetition ("Femte av tio") ends ANNOUNCE_GAP_S before its squeeze;
- a cue that would overlap the one before it is left out rather than shifted, so nothing drifts;
- with a pack that ticks (`[speech] counts = "ticks"`, for a sleeping room), every second of a hold is a TICK
  instead of a spoken number, long holds too (their announcements of the time left stay), and rests are quiet
  but for their announcements: the squeeze, release and repetition cues stay spoken.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from voicecoach.engine.language import Pack
from voicecoach.engine.programme import Exercise, Release

COUNTED_MAX_S = 10
COUNTDOWN_FROM = 3
INTRO_GAP_S = 1.0
ANNOUNCE_GAP_S = 0.4
GUARD_S = 0.15
RELEASE_PAUSE_S = {Release.SLOW: 1.5, Release.QUICK: 0.3}

Durations = Callable[[str], float]
# The text of a tick: not a phrase, but a short sound the clip cache makes (sound/clips.py).
TICK = "[tick]"


class Phase(StrEnum):
    INTRO = "intro"
    HOLD = "hold"
    RELEASE = "release"
    REST = "rest"
    DONE = "done"


@dataclass(frozen=True)
class Cue:
    """One thing said at time t (seconds on the session's clock)."""

    t: float
    phase: Phase
    rep: int | None
    text: str

    def label(self) -> str:
        """How a terminal shows the cue: 'release 3: Släpp'."""
        rep = f" {self.rep}" if self.rep is not None else ""
        return f"{self.phase}{rep}: {self.text}"

    def as_json(self) -> dict[str, object]:
        return {"t": round(self.t, 6), "phase": str(self.phase), "rep": self.rep, "text": self.text}


@dataclass(frozen=True)
class Segment:
    """A stretch of the set in one phase; the session engine uses it to decide what a pause means."""

    phase: Phase
    rep: int | None
    start: float
    end: float


def first_pause(cues: Iterable[Cue], durations: Durations, now: float, length: float) -> float:
    """The earliest time from now at which length seconds can be said over none of cues, GUARD_S clear of each:
    after the word being said, never over a count."""
    at = now
    for start, end in sorted((c.t, c.t + durations(c.text)) for c in cues):
        if end + GUARD_S <= at:
            continue
        if at + length + GUARD_S <= start:
            break
        at = max(at, end + GUARD_S)
    return at


@dataclass
class Timeline:
    cues: list[Cue] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)

    @property
    def end(self) -> float:
        return self.segments[-1].end if self.segments else 0.0


class Layout:
    """Builds timelines for one exercise in one language; durations gives a phrase's spoken length."""

    def __init__(self, exercise: Exercise, pack: Pack, durations: Durations) -> None:
        self.exercise = exercise
        self.pack = pack
        self._dur = durations

    def duration(self, text: str) -> float:
        return self._dur(text)

    def full_set(self, t: float, first: int = 1) -> Timeline:
        """The set from its introduction at time t, starting at repetition first."""
        out = Timeline()
        intro_end = self._say(out, t, Phase.INTRO, None, self.pack.intro(self.exercise)) + INTRO_GAP_S
        hold_at = self._announce(out, intro_end, Phase.INTRO, first, floor=intro_end)
        out.segments.append(Segment(Phase.INTRO, None, t, hold_at))
        self._reps_from(out, first, hold_at)
        return out

    def restart_rep(self, rep: int, t: float) -> Timeline:
        """After a pause mid-hold: say so, then do that repetition again and carry on."""
        out = Timeline()
        end = self._say(out, t, Phase.REST, rep, self.pack.cues["restart_rep"])
        hold_at = end + ANNOUNCE_GAP_S
        out.segments.append(Segment(Phase.REST, rep - 1 or None, t, hold_at))
        self._reps_from(out, rep, hold_at)
        return out

    def continue_rest(self, rep: int, remaining_s: float, t: float) -> Timeline:
        """After a pause mid-rest: say so, rest what was left (at least long enough to announce), go on."""
        out = Timeline()
        floor = self._say(out, t, Phase.REST, rep, self.pack.cues["continue_rest"])
        hold_at = max(t + remaining_s, floor)
        hold_at = self._announce(out, hold_at, Phase.REST, rep + 1, floor=floor)
        out.segments.append(Segment(Phase.REST, rep, t, hold_at))
        self._reps_from(out, rep + 1, hold_at)
        return out

    def single(self, t: float, text: str, phase: Phase, rep: int | None) -> Timeline:
        """One line on its own ("Paus.", "Avslutat.")."""
        out = Timeline()
        end = self._say(out, t, phase, rep, text)
        out.segments.append(Segment(phase, rep, t, end))
        return out

    # -- building blocks -------------------------------------------------------------------

    def _say(self, out: Timeline, t: float, phase: Phase, rep: int | None, text: str) -> float:
        out.cues.append(Cue(t, phase, rep, text))
        return t + self._dur(text)

    def _fits(self, out: Timeline, t: float) -> bool:
        last = out.cues[-1] if out.cues else None
        return last is None or t >= last.t + self._dur(last.text) + GUARD_S

    def _announce(self, out: Timeline, hold_at: float, phase: Phase, rep: int, floor: float) -> float:
        """Say "Femte av tio" so that it ends ANNOUNCE_GAP_S before the squeeze; returns the squeeze time.

        If the announcement does not fit after floor, the squeeze waits for it rather than overlap it.
        """
        text = self.pack.rep(rep, self.exercise.reps)
        at = max(hold_at - ANNOUNCE_GAP_S - self._dur(text), floor)
        if out.cues and not self._fits(out, at):
            return hold_at
        end = self._say(out, at, phase, rep, text)
        return max(hold_at, end + ANNOUNCE_GAP_S)

    def _reps_from(self, out: Timeline, first: int, hold_at: float) -> None:
        total = self.exercise.reps
        for rep in range(first, total + 1):
            release_at = self._hold(out, rep, hold_at)
            rest_at = self._release(out, rep, release_at)
            if rep == total:
                end = self._say(out, rest_at, Phase.DONE, None, self.pack.cues["done"])
                out.segments.append(Segment(Phase.DONE, None, rest_at, end))
                return
            hold_at = self._rest(out, rep, rest_at)

    def _hold(self, out: Timeline, rep: int, t: float) -> float:
        """Squeeze at t; returns when the release cue is said."""
        hold = self.exercise.hold_s
        self._say(out, t, Phase.HOLD, rep, self.pack.squeeze(self.exercise))
        end = t + hold
        if self.pack.ticks or hold <= COUNTED_MAX_S:
            if self.pack.ticks:
                self._ticks(out, t, end, rep)
            else:
                for k in range(1, hold + 1):
                    if self._fits(out, t + k):
                        self._say(out, t + k, Phase.HOLD, rep, self.pack.number(k))
            last = out.cues[-1]
            release_at = max(end, last.t + self._dur(last.text) + GUARD_S)
        else:
            self._time_left(out, t, end, Phase.HOLD, rep)
            release_at = end
        out.segments.append(Segment(Phase.HOLD, rep, t, release_at))
        return release_at

    def _ticks(self, out: Timeline, start: float, end: float, rep: int) -> None:
        """A tick every second of the hold but its last, which the release cue ends, and where an announcement of the
        time left is said."""
        seconds = round(end - start)
        said = {seconds - left: text for left, text in self.pack.time_left.items() if left < seconds}
        for k in range(1, seconds):
            if self._fits(out, start + k):
                self._say(out, start + k, Phase.HOLD, rep, said.get(k, TICK))

    def _time_left(self, out: Timeline, start: float, end: float, phase: Phase, rep: int) -> None:
        for left, text in sorted(self.pack.time_left.items(), reverse=True):
            at = end - left
            if at > start and self._fits(out, at):
                self._say(out, at, phase, rep, text)
        for left in range(COUNTDOWN_FROM, 0, -1):
            if self._fits(out, end - left):
                self._say(out, end - left, phase, rep, self.pack.number(left))

    def _release(self, out: Timeline, rep: int, t: float) -> float:
        key = "release_slow" if self.exercise.release is Release.SLOW else "release_quick"
        end = self._say(out, t, Phase.RELEASE, rep, self.pack.cues[key]) + RELEASE_PAUSE_S[self.exercise.release]
        out.segments.append(Segment(Phase.RELEASE, rep, t, end))
        return end

    def _rest(self, out: Timeline, rep: int, t: float) -> float:
        """Rest after rep, announcing the next one; returns when the next squeeze is said."""
        rest = self.exercise.rest_s
        floor = self._say(out, t, Phase.REST, rep, self.pack.cues["rest"])
        next_hold = t + rest
        announcement = self.pack.rep(rep + 1, self.exercise.reps)
        announce_at = next_hold - ANNOUNCE_GAP_S - self._dur(announcement)
        if rest <= COUNTED_MAX_S and not self.pack.ticks:
            for k in range(1, rest):
                fits_before = t + k + self._dur(self.pack.number(k)) + GUARD_S <= announce_at
                if fits_before and self._fits(out, t + k):
                    self._say(out, t + k, Phase.REST, rep, self.pack.number(k))
        elif rest > COUNTED_MAX_S:
            for left, text in sorted(self.pack.time_left.items(), reverse=True):
                at = next_hold - left
                if at > t and at + self._dur(text) + GUARD_S <= announce_at and self._fits(out, at):
                    self._say(out, at, Phase.REST, rep, text)
        hold_at = self._announce(out, next_hold, Phase.REST, rep + 1, floor=floor + GUARD_S)
        out.segments.append(Segment(Phase.REST, rep, t, hold_at))
        return hold_at
