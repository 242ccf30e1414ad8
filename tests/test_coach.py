"""The coach on an offline mixer: the audio clock is simulated by rendering blocks, nothing waits."""

from datetime import datetime

import numpy as np

from voicecoach.coach import SENTENCE_GAP_S, Coach, sentences
from voicecoach.engine.programme import SPEED, STRENGTH, find_exercise, with_overrides
from voicecoach.engine.session import Outcome
from voicecoach.engine.timeline import GUARD_S, Phase
from voicecoach.intents import Intent
from voicecoach.sound import volume
from voicecoach.sound.mixer import Mixer

RATE = 1000
BLOCK = 50


class FakeClips:
    """Clips of 60 ms a character, as a unit-test stand-in for espeak-ng renders."""

    sample_rate = RATE

    def clip(self, text: str) -> np.ndarray:
        return np.full(int(0.06 * len(text) * RATE), 0.1, dtype=np.float32)

    def duration(self, text: str) -> float:
        return self.clip(text).size / RATE

    keep = clip


class FakeJournal:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def start_session(self, exercise_key, planned_reps, hold_s, rest_s, started_at: datetime) -> int:
        self.calls.append(("start", exercise_key, planned_reps))
        return 7

    def record_rep(self, session_id, rep, hold_s, completed_at: datetime) -> None:
        self.calls.append(("rep", session_id, rep))

    def finish_session(self, session_id, outcome, ended_at: datetime) -> None:
        self.calls.append(("finish", session_id, outcome))


class FakeVolume:
    """Her level as Loudness keeps it, without a state directory: the gains it applied."""

    def __init__(self, level_db: float = -9.0) -> None:
        self.level_db = level_db
        self.gains: list[float] = []
        self._set_gain = self.gains.append

    def change(self, request: volume.Request) -> str:
        self.level_db = request.apply(self.level_db)
        self._set_gain(volume.gain(1.0, self.level_db))
        return f"volume {self.level_db:+.0f} dB"

    def attach(self, set_gain) -> None:
        self._set_gain = set_gain


class Rig:
    def __init__(self, sv, journal=None, reps=2, loudness=None):
        self.events = []
        self.mixer = Mixer(RATE, on_event=self.events.append)
        self.ended: list[Outcome] = []
        self.heard = []
        self.coach = Coach(
            self.mixer,
            FakeClips(),
            sv,
            lambda key: with_overrides(find_exercise(key), reps=reps),
            journal,
            on_cue=self.heard.append,
            on_set_end=self.ended.append,
            loudness=loudness,
        )

    def run_for(self, seconds: float) -> None:
        for _ in range(int(seconds * RATE / BLOCK)):
            self.mixer.render(np.zeros(BLOCK, dtype=np.float32))
            while self.events:
                self.coach.on_mixer_event(self.events.pop(0))


def test_a_full_set_records_every_rep_as_it_completes_and_ends_completed(sv):
    journal = FakeJournal()
    rig = Rig(sv, journal)
    assert rig.coach.handle(Intent("start", exercise="speed"))
    rig.run_for(5)
    assert journal.calls[0] == ("start", "speed", 2)
    rig.run_for(200)
    assert journal.calls == [("start", "speed", 2), ("rep", 7, 1), ("rep", 7, 2), ("finish", 7, "completed")]
    assert rig.ended == [Outcome.COMPLETED]
    assert rig.coach.state == "idle"


def test_rep_is_recorded_when_its_release_is_heard_not_before(sv):
    journal = FakeJournal()
    rig = Rig(sv, journal)
    rig.coach.handle(Intent("start", exercise="speed"))
    for _ in range(400):
        rig.run_for(0.05)
        release_heard = any(c.phase is Phase.RELEASE for c in rig.heard)
        assert (("rep", 7, 1) in journal.calls) == release_heard
        if release_heard:
            return
    raise AssertionError("no release was heard")


def test_stop_mid_set_keeps_completed_reps_and_ends_stopped(sv):
    journal = FakeJournal()
    rig = Rig(sv, journal, reps=5)
    rig.coach.handle(Intent("start", exercise="strength"))
    while sum(1 for c in rig.heard if c.phase is Phase.RELEASE) < 2:
        rig.run_for(0.5)
    assert rig.coach.handle(Intent("stop"))
    rig.run_for(5)
    assert journal.calls[-1] == ("finish", 7, "stopped")
    assert [c for c in journal.calls if c[0] == "rep"] == [("rep", 7, 1), ("rep", 7, 2)]
    assert rig.heard[-1].text == "Avslutat."


def test_session_intents_mean_nothing_when_idle(sv):
    rig = Rig(sv)
    assert not rig.coach.handle(Intent("pause"))
    assert rig.coach.status()["state"] == "idle"


def test_start_while_in_a_session_is_refused(sv):
    rig = Rig(sv)
    rig.coach.handle(Intent("start", exercise="speed"))
    assert not rig.coach.handle(Intent("start", exercise="strength"))
    assert rig.coach.status()["exercise"] == SPEED.key


def test_next_skips_to_the_following_exercise(sv):
    journal = FakeJournal()
    rig = Rig(sv, journal)
    rig.coach.handle(Intent("start", exercise="identification"))
    rig.run_for(2)
    assert rig.coach.handle(Intent("next"))
    rig.run_for(3)
    assert ("finish", 7, "stopped") in journal.calls
    assert rig.coach.status()["exercise"] == STRENGTH.key
    assert rig.ended == []


def test_pause_silences_the_mixer_within_one_block(sv):
    rig = Rig(sv)
    rig.coach.handle(Intent("start", exercise="speed"))
    rig.run_for(1)
    rig.coach.handle(Intent("pause"))
    out = np.zeros(BLOCK, dtype=np.float32)
    rig.mixer.render(out)
    # The intro was playing; the next block is silent, since "Paus." is scheduled LEAD_S (one block) ahead.
    assert not np.any(out)
    assert rig.coach.status()["paused"] is True


def test_a_failing_journal_is_switched_off_and_the_set_goes_on(sv):
    class BrokenJournal(FakeJournal):
        def record_rep(self, *args):
            raise OSError(28, "No space left on device")

    journal = BrokenJournal()
    rig = Rig(sv, journal)
    rig.coach.handle(Intent("start", exercise="speed"))
    rig.run_for(200)
    assert rig.ended == [Outcome.COMPLETED]
    assert ("finish", 7, "completed") not in journal.calls


def test_a_skipped_set_is_journalled_and_the_journal_stays_on(sv, tmp_path):
    from voicecoach.training.journal import Journal

    journal = Journal.open(tmp_path / "journal.sqlite3")
    rig = Rig(sv, journal)
    rig.coach.handle(Intent("start", exercise="identification"))
    rig.run_for(2)
    rig.coach.handle(Intent("next"))
    rig.run_for(3)
    rig.coach.handle(Intent("stop"))
    rig.run_for(5)
    outcomes = [(s.exercise, str(s.outcome)) for s in journal.sessions()]
    assert outcomes == [("identification", "stopped"), ("strength", "stopped")]
    journal.close()


def test_phrases_said_between_sets_wait_for_each_other_and_a_set_waits_for_them(sv):
    rig = Rig(sv)
    first, second = "Den här veckan har du tränat tre dagar.", "Dags att träna."
    rig.coach.handle(Intent("say", text=first))
    rig.coach.handle(Intent("say", text=second))
    rig.coach.handle(Intent("start", exercise="speed"))
    rig.run_for(FakeClips().duration(first) + FakeClips().duration(second) + 1.0)
    started = [(round(cue.t, 3), cue.text) for cue in rig.heard]
    assert [text for _t, text in started] == [first, second, sv.intro(find_exercise("speed"))]
    # Each begins where the one before it ends: nothing is said over anything else.
    assert started[1][0] == round(started[0][0] + FakeClips().duration(first), 3)
    assert started[2][0] == round(started[1][0] + FakeClips().duration(second), 3)


def test_a_set_started_after_a_stopped_one_does_not_wait_for_speech_the_stop_cut(sv):
    # A long phrase, a set queued behind it, stop: all of it is cut. The next set starts now, not when that
    # phrase would have ended (34 s late for its first repetition, on the landed main).
    rig = Rig(sv)
    long = "Den här veckan har du tränat tre dagar. " * 12
    rig.coach.handle(Intent("say", text=long))
    rig.coach.handle(Intent("start", exercise="strength"))
    rig.run_for(1)
    assert rig.coach.handle(Intent("stop"))
    rig.run_for(3)
    assert rig.coach.state == "idle"
    asked = rig.coach.now()
    rig.coach.handle(Intent("start", exercise="strength"))
    rig.run_for(1)
    intros = [round(cue.t, 3) for cue in rig.heard if cue.text == sv.intro(find_exercise("strength"))]
    # The first set's introduction was waiting behind the phrase when stop cut both.
    assert intros == [round(asked, 3)]


def test_stop_between_sets_silences_what_is_still_to_be_said(sv):
    rig = Rig(sv)
    rig.coach.handle(Intent("say", text="Den här veckan har du tränat tre dagar."))
    rig.coach.handle(Intent("say", text="Dags att träna."))
    rig.run_for(0.5)
    assert rig.coach.handle(Intent("stop"))
    out = np.zeros(BLOCK, dtype=np.float32)
    rig.mixer.render(out)
    assert not np.any(out)
    assert rig.coach.status()["speaking_s"] == 0
    rig.run_for(5)
    assert [cue.text for cue in rig.heard] == ["Den här veckan har du tränat tre dagar."]
    # With nothing left to say, stop means nothing.
    assert not rig.coach.handle(Intent("stop"))


def test_a_text_is_said_a_sentence_at_a_time_each_queued_as_soon_as_it_is_rendered(sv):
    rig = Rig(sv)
    queued_when_rendered: dict[str, float] = {}
    clips = rig.coach.clips
    clip = clips.clip

    def rendering(text: str) -> np.ndarray:
        queued_when_rendered.setdefault(text, rig.coach.speaking_s())
        return clip(text)

    rig.coach.clips.clip = rendering  # type: ignore[method-assign]
    first, second, third = "Bra jobbat!", "Du har tränat tre dagar i rad.", "Vill du gå vidare?"
    took = rig.coach.say(f"  {first} {second}\n{third} ")
    rig.run_for(took + 1.0)
    started = [(round(cue.t, 3), cue.text) for cue in rig.heard]
    assert [text for _t, text in started] == [first, second, third]
    # The first is already waiting to be said while the second renders: a slow voice is heard from its first sentence.
    assert queued_when_rendered[first] == 0
    assert queued_when_rendered[second] > 0
    # Between two sentences, the pause espeak-ng makes between them within one text.
    assert started[1][0] == round(started[0][0] + clips.duration(first) + SENTENCE_GAP_S, 3)
    assert started[2][0] == round(started[1][0] + clips.duration(second) + SENTENCE_GAP_S, 3)
    assert took == sum(clips.duration(t) for t in (first, second, third)) + 2 * SENTENCE_GAP_S


def test_a_number_with_a_point_in_it_does_not_end_a_sentence():
    assert sentences("Klockan 7.30 är det dags. Säg ja!") == ["Klockan 7.30 är det dags.", "Säg ja!"]
    assert sentences("elva sjuttiosju punkt se.") == ["elva sjuttiosju punkt se."]
    assert sentences("   ") == []


def test_pieces_are_said_back_to_back_with_a_pause_only_after_a_sentence(sv):
    rig = Rig(sv)
    pieces = ("Du har tränat", "tolv", "dagar i rad.", "Bra!")
    took = rig.coach.say(pieces)
    rig.run_for(took + 1.0)
    starts = [round(cue.t, 3) for cue in rig.heard]
    assert [cue.text for cue in rig.heard] == list(pieces)
    lengths = [rig.coach.clips.duration(p) for p in pieces]
    assert starts[1] == round(starts[0] + lengths[0], 3)
    assert starts[2] == round(starts[1] + lengths[1], 3)
    assert starts[3] == round(starts[2] + lengths[2] + SENTENCE_GAP_S, 3)


def test_louder_in_a_hold_turns_the_mixer_up_at_once_and_says_the_level_in_the_next_pause(sv):
    loudness = FakeVolume(-9.0)
    rig = Rig(sv, reps=3, loudness=loudness)
    rig.coach.handle(Intent("start", exercise="strength"))
    planned = [c for c in rig.coach.session._timeline.cues]
    while not any(c.phase is Phase.HOLD and c.text != "Knip" for c in rig.heard):
        rig.run_for(0.05)
    assert rig.coach.handle(Intent("louder"))
    assert loudness.level_db == -6.0
    out = np.zeros(BLOCK * 3, dtype=np.float32)
    rig.mixer.render(out)
    # The mixer was given the new gain (the coach attached it) and ramps to it over a block.
    assert rig.mixer.gain == volume.gain(1.0, -6.0)
    rig.run_for(60)
    said = [c for c in rig.heard if c.text == "Volym nio."]
    assert len(said) == 1 and said[0].rep is None
    # Nothing planned moved, and the level was said over none of it.
    heard_planned = [c for c in rig.heard if c.text != "Volym nio."]
    assert [(c.t, c.text) for c in heard_planned] == [(c.t, c.text) for c in planned][: len(heard_planned)]
    start, end = said[0].t, said[0].t + FakeClips().duration(said[0].text)
    assert all(c.t + FakeClips().duration(c.text) + GUARD_S <= start or c.t >= end + GUARD_S for c in planned)


def test_the_volume_asked_is_not_said_and_a_change_between_sets_is_said_at_once(sv):
    loudness = FakeVolume(0.0)
    rig = Rig(sv, loudness=loudness)
    assert rig.coach.change_volume(volume.Request()) == "volume +0 dB"
    assert rig.coach.speaking_s() == 0
    assert rig.coach.handle(Intent("louder"))  # at the loudest already: said so
    rig.run_for(3)
    assert [c.text for c in rig.heard] == ["Högsta volym."]
    rig.coach.change_volume(volume.parse_request("-12dB"))
    rig.run_for(3)
    assert [c.text for c in rig.heard] == ["Högsta volym.", "Volym sju."]


def test_without_a_volume_louder_means_nothing(sv):
    assert not Rig(sv).coach.handle(Intent("louder"))
