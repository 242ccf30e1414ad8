"""The coach: turns intents (typed, spoken, from the control socket) into sessions on one long-lived mixer.

It lives on the event loop's thread. The audio callback reaches it only through events the loop delivers
(call_soon_threadsafe), so no object is shared between threads.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Protocol

from voicecoach.engine.language import Pack
from voicecoach.engine.programme import EXERCISES, Exercise
from voicecoach.engine.session import Outcome, Reaction, Session, State
from voicecoach.engine.timeline import TICK, Cue, Phase
from voicecoach.intents import SESSION, Intent, Mode, Name
from voicecoach.sound import volume
from voicecoach.sound.clips import ClipCache
from voicecoach.sound.mixer import Drained, Mixer, MixerEvent, Scheduled, Started

log = logging.getLogger(__name__)

# How far ahead of the mixer's clock new cues are scheduled: more than one block, so the callback
# always sees them before their first sample is due.
LEAD_S = 0.05
NOTICE_GAP_S = 0.7
# Text said between sets is rendered and queued a sentence at a time, each one as soon as it is rendered: a neural
# voice on a Pi renders at about half real time, so a long answer would otherwise be silent for seconds before its
# first word. The pause between two sentences is espeak-ng's own between the sentences of one text (measured: 0.31 s).
SENTENCE_GAP_S = 0.3
SENTENCE_MARKS = ".!?"
SENTENCE_END = re.compile(rf"(?<=[{re.escape(SENTENCE_MARKS)}])\s+")


class JournalSink(Protocol):
    def start_session(
        self, exercise_key: str, planned_reps: int, hold_s: int, rest_s: int, started_at: datetime
    ) -> int:
        raise NotImplementedError

    def record_rep(self, session_id: int, rep: int, hold_s: float, completed_at: datetime) -> None:
        raise NotImplementedError

    def finish_session(self, session_id: int, outcome: str, ended_at: datetime) -> None:
        raise NotImplementedError


class Volume(Protocol):
    """Her volume (daemon/loudness.py): its level, a change to it, and the mixer it is applied to."""

    @property
    def level_db(self) -> float:
        raise NotImplementedError

    def change(self, request: volume.Request) -> str:
        raise NotImplementedError

    def attach(self, set_gain: Callable[[float], None]) -> None:
        raise NotImplementedError


# What the coach says outside a set of the pack's cues.
NOTICE_CUES = ("ready", "audio_back", "failed", "restarting", "count_ticks", "count_words")


def phrases_to_render(
    exercises: Iterable[Exercise], pack: Pack, between: Iterable[str], duration: Callable[[str], float]
) -> list[str]:
    """Every phrase the coach may say that can be rendered ahead, each once: every set of each exercise (as
    configured), the notices (NOTICE_CUES of the pack), so that saying what went wrong cannot itself fail to render,
    and what is said between sets (progress_texts.to_render). duration: a phrase's length, which the sets' timing
    needs."""
    texts: dict[str, None] = {}
    for exercise in exercises:
        # Counted either way: she may switch between sets ("tyst räkning").
        for counted in (replace(pack, ticks=False), replace(pack, ticks=True)):
            texts.update(dict.fromkeys(sorted(Session(exercise, counted, duration).phrases())))
    # Not a phrase: made by the clip cache, never rendered.
    texts.pop(TICK, None)
    # Her volume may be said back in a set.
    texts.update(dict.fromkeys(volume.all_said(pack)))
    # Text is said a sentence at a time (Coach.say), so its sentences are what is rendered.
    texts.update(dict.fromkeys(sentences_of(pack.cues[k] for k in NOTICE_CUES)))
    texts.update(dict.fromkeys(sentences_of(between)))
    return list(texts)


def sentences(text: str) -> list[str]:
    """text split after each full stop, question or exclamation mark that ends a sentence."""
    return [part for part in SENTENCE_END.split(text.strip()) if part]


def sentences_of(texts: Iterable[str]) -> list[str]:
    """The sentences of texts, each once, in order: what saying them renders (Coach.say)."""
    return list(dict.fromkeys(s for text in texts for s in sentences(text)))


def scheduled(cues: Iterable[Cue], mixer: Mixer, clips: ClipCache) -> list[Scheduled]:
    return [Scheduled(mixer.seconds_to_sample(c.t), clips.clip(c.text), c) for c in cues]


class Coach:
    """Idle until asked to start; runs one session at a time; reports each finished set to on_set_end."""

    def __init__(
        self,
        mixer: Mixer,
        clips: ClipCache,
        pack: Pack,
        exercises: Callable[[str], Exercise],
        journal: JournalSink | None = None,
        on_cue: Callable[[Cue], None] = lambda _cue: None,
        on_set_end: Callable[[Outcome], None] = lambda _outcome: None,
        journal_off_notice: str | None = None,
        loudness: Volume | None = None,
    ) -> None:
        self.mixer = mixer
        self.clips = clips
        self.pack = pack
        self._exercises = exercises
        self._journal = journal
        self._on_cue = on_cue
        self._on_set_end = on_set_end
        self._journal_off_notice = journal_off_notice
        self.loudness = loudness
        if loudness is not None:
            loudness.attach(mixer.set_gain)
        self.session: Session | None = None
        self._journal_id: int | None = None
        # When the last phrase said outside a set ends (audio clock): the next one, or a set, waits for it.
        self._talk_until = 0.0

    # -- state -----------------------------------------------------------------------------

    def now(self) -> float:
        """The earliest time new audio can start, on the audio clock."""
        return self.mixer.position / self.mixer.rate + LEAD_S

    @property
    def state(self) -> str:
        return Mode.IDLE if self.session is None else Mode.SESSION

    def speaking_s(self) -> float:
        """How much is still to be said of the phrases said outside a set (say, progress, notices)."""
        return max(0.0, self._talk_until - self.now())

    def status(self) -> dict[str, object]:
        speaking = {"speaking_s": round(self.speaking_s(), 1)}
        if self.session is None:
            idle: dict[str, object] = {"state": str(Mode.IDLE), "exercise": None, "rep": None, "reps": None}
            return {**idle, "paused": False, **speaking}
        status = self.session.status(self.now())
        return {
            "state": str(Mode.SESSION),
            "exercise": self.session.exercise.key,
            "rep": status.rep,
            "reps": status.reps_total,
            "reps_done": status.reps_done,
            "paused": status.state is State.PAUSED,
            **speaking,
        }

    # -- intents ---------------------------------------------------------------------------

    def handle(self, intent: Intent) -> bool:
        """Carry out an intent; False when it means nothing in the current state."""
        if intent.name is Name.START and intent.exercise and self.session is None:
            self.start(self._exercises(intent.exercise))
            return True
        if intent.name is Name.SAY and intent.text:
            self.say(intent.text)
            return True
        if intent.name in (Name.LOUDER, Name.QUIETER) and self.loudness is not None:
            self.change_volume(volume.step(louder=intent.name is Name.LOUDER))
            return True
        if intent.name in SESSION and self.session is not None:
            reaction: Reaction | None = getattr(self.session, intent.name)(self.now())
            if reaction is None:
                return False
            self._play(reaction.cues, cut=reaction.cut)
            return True
        if intent.name is Name.STOP and self.speaking_s() > 0:
            # Between sets, stop silences what is still to be said (a long `ctl say` may queue minutes of it).
            self._play((), cut=True)
            return True
        return False

    def say(self, text: str | tuple[str, ...]) -> float:
        """Say text after whatever is being said, a sentence at a time, or the pieces given, one after the other
        with SENTENCE_GAP_S after each that ends a sentence; how long it takes."""
        total, gap = 0.0, 0.0
        for piece in sentences(text) if isinstance(text, str) else text:
            length = self.clips.duration(piece)  # rendered here, if need be, while the piece before it plays
            at = max(self.now(), self._talk_until + gap)
            self._play((Cue(at, Phase.DONE, None, piece),), cut=False)
            self._talk_until = at + length
            total += gap + length
            gap = SENTENCE_GAP_S if piece.rstrip().endswith(tuple(SENTENCE_MARKS)) else 0.0
        return total

    def change_volume(self, request: volume.Request) -> str:
        """Change her volume (at once: the mixer ramps to it over one block) and say the new level back, in a set
        in its next pause; only to be told the level, nothing is said. What `ctl volume` answers."""
        assert self.loudness is not None, "a coach without a volume to change"
        message = self.loudness.change(request)
        if request != volume.Request():
            self.say_aside(volume.said(self.pack, self.loudness.level_db))
        return message

    def say_aside(self, text: str) -> None:
        """Say text in the set's next pause (Session.say_between), or between sets after whatever is being said."""
        if self.session is None:
            self.say(text)
            return
        self.clips.keep(text)
        self._play(self.session.say_between(self.now(), text).cues, cut=False)

    def prepare(self, exercise: Exercise) -> Session:
        """A new session whose every phrase is rendered and loaded. Do this before the stream runs where
        possible: loading holds the GIL, and an audio callback kept waiting underruns."""
        session = Session(exercise, self.pack, self.clips.duration)
        for text in [*session.phrases(), *(volume.all_said(self.pack) if self.loudness else ())]:
            self.clips.keep(text)
        return session

    def start(self, exercise: Exercise, prepared: Session | None = None) -> None:
        """Start a set of exercise: prepared, where prepare(exercise) has made its session already (the phrases
        are listed again otherwise, some tens of ms before the first sound)."""
        session = prepared if prepared is not None else self.prepare(exercise)
        self.session = session
        self._journal_id = self._journal_call(
            "start_session", exercise.key, exercise.reps, exercise.hold_s, exercise.rest_s, _utcnow()
        )
        at = max(self.now(), self._talk_until)
        if self._journal is None and self._journal_off_notice:
            # Said before every set while the journal is off, so nobody believes a set was saved that was not.
            notice = Cue(at, Phase.INTRO, None, self._journal_off_notice)
            self._play((notice,), cut=False)
            at += self.clips.duration(notice.text) + NOTICE_GAP_S
        self._play(session.start(at).cues, cut=False)

    def set_exercises(self, exercises: Callable[[str], Exercise]) -> None:
        """New programme overrides (a reloaded configuration); a set already running keeps its own."""
        self._exercises = exercises

    def abandon(self) -> None:
        """Shutting down: a running set is recorded as stopped at once, without a word."""
        if self.session is not None:
            self._journal_call("finish_session", self._journal_id, "stopped", _utcnow())
            self.session = None
            self._journal_id = None

    def _play(self, cues: Iterable[Cue], cut: bool) -> None:
        self.mixer.schedule(scheduled(cues, self.mixer, self.clips), cut=cut)
        if cut:
            # Whatever was still to be said is dropped with the rest: nothing new waits for it.
            self._talk_until = 0.0

    # -- audio events (delivered on the loop's thread) -----------------------------------------

    def on_mixer_event(self, event: MixerEvent) -> None:
        if isinstance(event, Started) and isinstance(event.tag, Cue):
            cue = event.tag
            # A repetition is done once its squeeze is over: the release cue is being said. It is committed
            # before the cue is reported, so a repetition anyone saw reported is in the journal.
            if cue.phase is Phase.RELEASE and cue.rep is not None and self.session is not None:
                self._journal_call("record_rep", self._journal_id, cue.rep, self.session.exercise.hold_s, _utcnow())
            self._on_cue(cue)
        elif isinstance(event, Drained) and self.session is not None:
            state = self.session.status(self.now()).state
            if state in (State.FINISHED, State.STOPPED):
                self._end_set()

    def _end_set(self) -> None:
        session = self.session
        assert session is not None and session.outcome is not None
        # The journal's outcomes are the set's own; a skipped set is, for it, one stopped early.
        outcome = Outcome.STOPPED if session.outcome is Outcome.SKIPPED else session.outcome
        self._journal_call("finish_session", self._journal_id, str(outcome), _utcnow())
        self.session = None
        self._journal_id = None
        if session.outcome is Outcome.SKIPPED:
            later = [e for e in EXERCISES if e.order > session.exercise.order]
            if later:
                self.start(self._exercises(later[0].key))
                return
        self._on_set_end(session.outcome)

    def _journal_call(self, method: str, *args: object) -> int | None:
        """Write to the journal; a journal that fails is switched off for good, and the set goes on."""
        if self._journal is None or (method != "start_session" and args[0] is None):
            return None
        try:
            return getattr(self._journal, method)(*args)
        except Exception:
            log.exception("the training journal failed; this session goes on without it")
            self._journal = None
            return None


def _utcnow() -> datetime:
    return datetime.now(UTC)
