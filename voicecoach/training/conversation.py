"""What the coach says between sets: progress when asked ("hur går det"), a question after a completed set
and its answer, and reminders. It reads and writes the journal; the daemon only passes intents and ticks in.

Lives on the event loop's thread, like the coach. Wall-clock time (local) decides reminders and calendar days;
the monotonic clock decides how long a question stays open, so a clock set at boot cannot close it. A Pi has no
real-time clock: until the system clock is synchronised after boot it shows a wrong time, and no reminder is said.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from voicecoach.engine.programme import Exercise
from voicecoach.engine.session import Outcome
from voicecoach.intents import Intent, Name
from voicecoach.training import diary, reminders
from voicecoach.training.clock import local_now
from voicecoach.training.dialogue import ANSWER_WINDOW_S, QUESTION, Question, after_set, answer, asked, diary_says
from voicecoach.training.diary import DiaryKind
from voicecoach.training.journal import Event, Journal, SessionRecord
from voicecoach.training.progress_texts import Phrases, Pieces, diary_pieces, summary_pieces
from voicecoach.training.progression import Progress, Rules, next_exercise, progress
from voicecoach.training.reminders import ReminderSettings

log = logging.getLogger(__name__)

# A reminder more than this late (the clock jumped at boot, or a long set ran over it) is dropped, not said late.
STALE = timedelta(hours=1)
# systemd-timesyncd makes this file once it has synchronised the clock; other NTP clients are asked through
# timedatectl, which reports the kernel's own flag.
TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")
# Until the clock is synchronised it is asked again at most this often: timedatectl is a subprocess.
CLOCK_CHECK_S = 60.0
UNSYNCHRONISED = "held until the system clock is synchronised (timedatectl show -p NTPSynchronized says no)"
# After the coach's last word the room still rings (its reverberation, and the echo path's delay). The question ends
# with "ja eller nej": heard during that tail, a "ja" may be the coach's own, so the answer is listened for only
# after it. The conversation's own constant, not listen.echo.RING_S: that one is how long the echo canceller keeps
# running, a detail of the listener tuned with it; this one is when the dialogue starts to listen. They are the same
# length because both wait out the same ringing.
ECHO_TAIL_S = 0.5
# What the diary's intents record.
DIARY = {Name.LEAK: DiaryKind.LEAK, Name.PAD: DiaryKind.PAD, Name.UNDO: DiaryKind.UNDO}


def timedatectl_synchronised() -> bool | None:
    """What `timedatectl show -p NTPSynchronized` says; None where it cannot tell (no systemd)."""
    try:
        done = subprocess.run(
            ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            # It answers in milliseconds over D-Bus; this is only a guard for the event loop it runs on.
            timeout=2,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    answer = done.stdout.strip()
    return {"yes": True, "no": False}.get(answer) if done.returncode == 0 else None


class ClockSync:
    """Whether the system clock has been synchronised since boot; once it has, it stays so. Where neither the
    timesync flag nor timedatectl can tell (no systemd), the clock is taken to be right, as before this check."""

    def __init__(self, flag: Path = TIMESYNC_FLAG, ask: Callable[[], bool | None] = timedatectl_synchronised) -> None:
        self._flag = flag
        self._ask = ask
        self._synchronised = False
        self._asked_at: float | None = None

    def __call__(self) -> bool:
        now = time.monotonic()
        if not self._synchronised and (self._asked_at is None or now - self._asked_at >= CLOCK_CHECK_S):
            self._asked_at = now
            self._synchronised = self._flag.exists() or self._ask() is not False
        return self._synchronised


class Conversation:
    def __init__(
        self,
        journal: Journal | None,
        phrases: Phrases,
        rules: Rules,
        settings: ReminderSettings,
        say: Callable[[str | Pieces], float],
        exercises: Callable[[str], Exercise],
        clock: Callable[[], datetime] = local_now,
        clock_synchronised: Callable[[], bool] | None = None,
    ) -> None:
        """say speaks a phrase (or its pieces) and returns how long it takes to say; exercises gives the configured
        exercise; clock_synchronised says whether clock can be trusted yet (by default, ClockSync)."""
        self._journal = journal
        self._phrases = phrases
        self._rules = rules
        self._settings = settings
        self._say = say
        self._exercises = exercises
        self._clock = clock
        self._synchronised = ClockSync() if clock_synchronised is None else clock_synchronised
        # Set while reminders wait for the clock: once it is right, the next one is worked out again.
        self._clock_was_wrong = False
        self.question: Question | None = None
        # The answer is listened for from the end of the question (which itself says "ja eller nej") until later.
        self._question_from = 0.0
        self._question_until = 0.0
        self._snoozed_until: datetime | None = None
        self.reminder_due = reminders.next_reminder(settings, clock())

    def configure(self, rules: Rules, settings: ReminderSettings) -> None:
        """A reloaded configuration. A snooze she asked for stays."""
        self._rules = rules
        self._settings = settings
        self.reminder_due = reminders.next_reminder(settings, self._clock(), self._snoozed_until)

    def state(self, coach_state: str, now: float) -> str:
        """The listener's state: QUESTION while a question waits for its answer, else the coach's."""
        if coach_state == "idle" and self.question is not None:
            if now < self._question_from:
                return coach_state
            if now < self._question_until:
                return QUESTION
            log.info("no answer to the question; it is asked again another time")
            self.question = None
        return coach_state

    # -- intents ------------------------------------------------------------------------------

    def handle(self, intent: Intent, state: str) -> bool:
        """Carry out one of intents.CONVERSATION; False when it means nothing now. state: as state() gave it."""
        if intent.name is Name.PROGRESS and state == "idle":
            self._say_progress()
            return True
        if intent.name in (Name.YES, Name.NO) and state == QUESTION and self.question is not None:
            events, reply = answer(self.question, intent.name is Name.YES, self._clock(), self._phrases)
            self.question = None
            self._record(events)
            self._say(reply)
            return True
        if intent.name is Name.SNOOZE and intent.minutes and state != "session":
            self._snooze(intent.minutes)
            return True
        if intent.name in DIARY and state == "idle":
            self._diary(DIARY[intent.name])
            return True
        return False

    def _diary(self, kind: DiaryKind) -> None:
        """Record a leak or a pad change, or take the last back; say so, or that the journal is off."""
        records = self._records()
        if records is None:
            self._say(self._phrases.text["diary_off"])
            return
        now = self._clock()
        if kind is DiaryKind.UNDO and diary.undoable(records[1], now) is None:
            self._say(self._phrases.text["diary_nothing_to_undo"])
            return
        if not self._record([diary.entry_event(kind, now)]):
            self._say(self._phrases.text["diary_off"])
            return
        log.info("diary: %s", kind)
        self._say(self._phrases.text["diary_undone" if kind is DiaryKind.UNDO else "diary_noted"])

    def _say_progress(self) -> None:
        records = self._records()
        if records is None:
            self._say(self._phrases.text["progress_off"])
            return
        pieces = summary_pieces(self._progress(records).summary, self._phrases)
        weeks = diary.this_week_and_last(diary.entries(records[1]), self._clock())
        if weeks is not None:
            pieces += diary_pieces(*weeks, self._phrases)
        self._say(pieces)

    def _snooze(self, minutes: int) -> None:
        if not self._synchronised():
            log.info("no reminder in %d minutes: the system clock is not synchronised yet", minutes)
            self._say(self._phrases.text["snooze_no_clock"])
            return
        now = self._clock()
        until = reminders.snooze(self._settings, now, minutes)
        if until is None:
            log.info("no reminder in %d minutes: that is in the quiet hours", minutes)
            self._say(self._phrases.text["snooze_quiet"])
            return
        self._snoozed_until = until
        self.reminder_due = reminders.next_reminder(self._settings, now, until)
        log.info("reminder snoozed until %s", until.strftime("%H:%M"))
        self._say(self._phrases.text["snoozed"])

    # -- after a set, and the clock -----------------------------------------------------------

    def set_ended(self, outcome: Outcome, now: float) -> None:
        """A set is over and the coach is idle: after a completed one, ask what is waiting for her answer."""
        self.question = None
        records = self._records()
        if outcome is not Outcome.COMPLETED or records is None:
            return
        progress = self._progress(records)
        told = diary_says(progress, records[1], self._clock(), self._rules, self._phrases)
        if told is not None:
            events, text = told
            self._record(events)
            log.info("the symptom check, from the leak diary: %s", events[0].value)
            self._say(text)
            return
        question = after_set(progress, self._phrases)
        if question is None:
            return
        self._record(asked(question, self._clock()))
        log.info("asked: %s", question.text)
        self.question = question
        self._question_from = now + self._say(question.text) + ECHO_TAIL_S
        self._question_until = self._question_from + ANSWER_WINDOW_S

    def session_started(self) -> None:
        """Starting a set is no answer; the question is dropped."""
        self.question = None

    def tick(self, busy: bool) -> None:
        """Called every few seconds. busy: a set runs or a question waits; a reminder due then waits for it."""
        if self.reminder_due is None:
            return
        if not self._synchronised():
            self._clock_was_wrong = True
            return
        if self._clock_was_wrong:
            # The clock has just been set: the reminder worked out from the wrong time is worked out again.
            self._clock_was_wrong = False
            self.reminder_due = reminders.next_reminder(self._settings, self._clock(), self._snoozed_until)
        due = self.reminder_due
        now = self._clock()
        if due is None or now < due:
            return
        what = reminders.delivery(self._settings, now, session_running=busy)
        if what is reminders.Delivery.WAIT:
            return
        asked_for = due == self._snoozed_until
        self._snoozed_until = None
        self.reminder_due = reminders.next_reminder(self._settings, now)
        if what is reminders.Delivery.DROP or now - due > STALE:
            log.info("the reminder of %s is dropped: it is too late for it now", due.strftime("%H:%M"))
            return
        records = self._records()
        if not asked_for and records is not None and self._progress(records).next_session.due_today == 0:
            log.info("the reminder of %s is not said: today's training is done", due.strftime("%H:%M"))
            return
        log.info("reminder of %s said", due.strftime("%H:%M"))
        self._say(self._phrases.text["reminder"])

    def reminder_status(self) -> str:
        """When the next reminder is due, or why none is, for `ctl status`."""
        if self.reminder_due is None:
            return "on, none due" if self._settings.enabled else "off"
        if not self._synchronised():
            return UNSYNCHRONISED
        # With the offset: on a daylight-saving change day it says which 08:00 is meant.
        return f"next at {self.reminder_due.isoformat(' ', 'minutes')}"

    def next_exercise(self) -> Exercise:
        """What "starta träning" plays now."""
        sessions, events = self._records() or ([], [])
        return next_exercise(sessions, events, self._clock(), self._rules, self._exercises)

    # -- the journal --------------------------------------------------------------------------

    def _progress(self, records: tuple[list[SessionRecord], list[Event]]) -> Progress:
        return progress(*records, self._clock(), self._rules, self._exercises)

    def _records(self) -> tuple[list[SessionRecord], list[Event]] | None:
        """The journal's sessions and events; None without a usable journal."""
        if self._journal is None:
            return None
        try:
            return self._journal.sessions(), self._journal.events()
        except Exception:
            log.exception("the training journal cannot be read; progress is not spoken until a restart")
            self._journal = None
            return None

    def _record(self, events: list[Event]) -> bool:
        """Write events to the journal; False (logged) when they cannot be."""
        if self._journal is None:
            return False
        try:
            for event in events:
                self._journal.record_event(event.kind, event.value, event.at)
        except Exception:
            log.exception("the training journal cannot be written; what was said is not kept")
            return False
        return True
