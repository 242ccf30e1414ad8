"""The session engine: a pure state machine over a set's timeline. It is given the time; it never reads a clock.

Every method that changes what will be heard returns a Reaction: whether to cut what is scheduled,
and the cues to schedule from now on. The caller (the audio shell) carries it out.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from voicecoach.engine.language import Pack
from voicecoach.engine.programme import Exercise
from voicecoach.engine.timeline import Cue, Durations, Layout, Phase, Segment, Timeline, first_pause


class Outcome(StrEnum):
    """How the engine ended a set (the journal records it as journal.Recorded)."""

    COMPLETED = "completed"
    STOPPED = "stopped"
    COULD_NOT_FINISH = "could_not_finish"
    SKIPPED = "skipped"


class State(StrEnum):
    READY = "ready"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    FINISHED = "finished"


@dataclass(frozen=True)
class Reaction:
    """What the shell must do: drop everything scheduled (cut), then schedule these cues."""

    cut: bool
    cues: tuple[Cue, ...]


@dataclass(frozen=True)
class Status:
    state: State
    phase: Phase | None
    rep: int | None
    reps_done: int
    reps_total: int

    @property
    def reps_left(self) -> int:
        return self.reps_total - self.reps_done


class SessionError(RuntimeError):
    """An intent that makes no sense in the current state (a bug in the caller, not a user error)."""


class Session:
    """One set of one exercise. Times are seconds on the caller's clock (the audio clock in real use)."""

    def __init__(self, exercise: Exercise, pack: Pack, durations: Durations) -> None:
        self.exercise = exercise
        self.layout = Layout(exercise, pack, durations)
        self.state = State.READY
        self._timeline = Timeline()
        self._paused_in: Segment | None = None
        self._paused_at = 0.0
        self._reps_done = 0
        self._cues = pack.cues
        self.outcome: Outcome | None = None

    # -- intents ---------------------------------------------------------------------------

    def start(self, now: float) -> Reaction:
        if self.state is not State.READY:
            raise SessionError(f"cannot start a session that is {self.state}")
        self.state = State.RUNNING
        self._timeline = self.layout.full_set(now)
        return Reaction(cut=False, cues=tuple(self._timeline.cues))

    def pause(self, now: float) -> Reaction | None:
        """Pause at now. Returns None when there is nothing to pause (already paused, or set over)."""
        if self._advance(now) is not State.RUNNING:
            return None
        segment = self._segment_at(now)
        if segment is None or segment.phase is Phase.DONE:
            return None
        self.state = State.PAUSED
        self._paused_in = segment
        self._paused_at = now
        self._timeline = self.layout.single(now, self._cues["paused"], segment.phase, segment.rep)
        return Reaction(cut=True, cues=tuple(self._timeline.cues))

    def resume(self, now: float) -> Reaction | None:
        """Resume at now: a hold starts over (and says so); a rest goes on for what was left of it."""
        if self.state is not State.PAUSED or self._paused_in is None:
            return None
        seg = self._paused_in
        if seg.phase is Phase.INTRO:
            timeline = self.layout.full_set(now)
        elif seg.phase is Phase.HOLD and seg.rep is not None:
            timeline = self.layout.restart_rep(seg.rep, now)
        else:
            # Paused in a release or rest: that repetition's squeeze is already done.
            rep = seg.rep if seg.rep is not None else self._reps_done
            timeline = self.layout.continue_rest(rep, seg.end - self._paused_at, now)
        self.state = State.RUNNING
        self._paused_in = None
        self._timeline = timeline
        return Reaction(cut=True, cues=tuple(timeline.cues))

    def stop(self, now: float) -> Reaction | None:
        return self._end(now, Outcome.STOPPED, "stopped")

    def cant(self, now: float) -> Reaction | None:
        """ "Orkar inte": she could not finish this repetition, so the set ends kindly and says so."""
        return self._end(now, Outcome.COULD_NOT_FINISH, "cant")

    def next(self, now: float) -> Reaction | None:
        """Skip the rest of this exercise; the shell goes on to the next one."""
        return self._end(now, Outcome.SKIPPED, "skip")

    def repeat(self, now: float) -> Reaction | None:
        """Say the instructions again, then take up the unfinished repetition from its start."""
        if self._advance(now) not in (State.RUNNING, State.PAUSED) or self._reps_done >= self.exercise.reps:
            return None
        self.state = State.RUNNING
        self._paused_in = None
        self._timeline = self.layout.full_set(now, first=self._reps_done + 1)
        return Reaction(cut=True, cues=tuple(self._timeline.cues))

    def how_many_left(self, now: float) -> Reaction | None:
        """Say how many repetitions are left, the current one included, over whatever is playing."""
        if self._advance(now) not in (State.RUNNING, State.PAUSED):
            return None
        left = self.exercise.reps - self._reps_done
        pack = self.layout.pack
        text = self._cues["none_left"] if left <= 1 else self._cues["left"].format(number=pack.number(left))
        return Reaction(cut=False, cues=(self._aside(now, text),))

    def say_between(self, now: float, text: str) -> Reaction:
        """Say text in the set's first pause from now that it fits in (timeline.first_pause): after the word being
        said, never over a count; after the last word, once the set is over."""
        at = first_pause(self._timeline.cues, self.layout.duration, now, self.layout.duration(text))
        cue = self._aside(at, text)
        # A second one waits for this one.
        self._timeline.cues.append(cue)
        return Reaction(cut=False, cues=(cue,))

    def _aside(self, at: float, text: str) -> Cue:
        """A cue said on the side of the set. It belongs to no repetition: a release cue with one is where the shell
        records that repetition done, and said in a release, this one would record it twice."""
        segment = self._segment_at(at) if self.state is State.RUNNING else self._paused_in
        return Cue(at, segment.phase if segment else Phase.REST, None, text)

    def _end(self, now: float, outcome: Outcome, text_key: str) -> Reaction | None:
        if self._advance(now) not in (State.RUNNING, State.PAUSED):
            return None
        self.state = State.STOPPED
        self.outcome = outcome
        self._timeline = self.layout.single(now, self._cues[text_key], Phase.DONE, None)
        return Reaction(cut=True, cues=tuple(self._timeline.cues))

    # -- queries ---------------------------------------------------------------------------

    def phrases(self) -> set[str]:
        """Every phrase this session may say, so the shell can render them before the clock starts."""
        texts = {cue.text for cue in self.layout.full_set(0.0).cues}
        for key in ("paused", "stopped", "restart_rep", "continue_rest", "cant", "skip", "none_left"):
            texts.add(self._cues[key])
        pack = self.layout.pack
        texts.update(self._cues["left"].format(number=pack.number(n)) for n in range(2, self.exercise.reps + 1))
        return texts

    def status(self, now: float) -> Status:
        state = self._advance(now)
        segment = self._segment_at(now) if state is State.RUNNING else self._paused_in
        return Status(
            state=state,
            phase=segment.phase if segment else None,
            rep=segment.rep if segment else None,
            reps_done=self._reps_done,
            reps_total=self.exercise.reps,
        )

    @property
    def end(self) -> float:
        """When the currently scheduled timeline has been said in full."""
        return self._timeline.end

    def _segment_at(self, now: float) -> Segment | None:
        for segment in self._timeline.segments:
            if segment.start <= now < segment.end:
                return segment
        return None

    def _advance(self, now: float) -> State:
        """Bring the completed-repetition count and the finished state up to now."""
        if self.state is State.RUNNING:
            for segment in self._timeline.segments:
                # A repetition counts once its squeeze is over: the release has begun.
                if segment.phase is Phase.RELEASE and segment.start <= now and segment.rep is not None:
                    self._reps_done = max(self._reps_done, segment.rep)
            if now >= self._timeline.end:
                self.state = State.FINISHED
                self.outcome = Outcome.COMPLETED
        return self.state
