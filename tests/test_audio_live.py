"""Real sessions played through PortAudio into a PulseAudio null sink, recorded from its monitor and checked.

Each cue is found in the recording by cross-correlating the exact clip the mixer plays. Tolerances are about
correctness (a cue missing, or late by a word), not performance: the timing numbers are in benchmarks/timing.py.
"""

from __future__ import annotations

import queue
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
from coach_command import planned_cues, voicecoach_command
from cues import SILENT, Onset, cue_onsets, find_clip, fixed_latency
from pulse import RATE, PulseServer, Recording

from voicecoach import paths
from voicecoach.config import DEFAULT_RATE_WPM
from voicecoach.engine.language import load_pack
from voicecoach.sound import volume
from voicecoach.sound.clips import ClipCache

pytestmark = pytest.mark.audio

SHORT_SET = ["strength", "--reps", "2", "--hold", "3", "--rest", "3"]
# A cue more than this from its place after the fixed output latency is taken off is wrong, not slow.
TOLERANCE_S = 0.030
# Normalised correlation of a clip heard whole; a missing cue scores far lower.
WHOLE = 0.9
# Generous guards against a hung process; the tests never wait this long when things work.
HANG_S = 60.0


@dataclass(frozen=True)
class Coach:
    """The PulseAudio server, the environment the CLI runs in, and the clips it plays (at the recording rate)."""

    pulse: PulseServer
    env: dict[str, str]
    clips: ClipCache

    def record(self) -> Recording:
        recording = self.pulse.record()
        # Wait for parec to be connected and the monitor to run, so the start of the session is not lost.
        recording.wait_for(RATE // 10)
        return recording

    def session(self, args: list[str], stdin: int, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """Start `voicecoach session ARGS` playing into the virtual speaker, its stdout and stderr piped (env: the
        coach's environment, or another)."""
        return subprocess.Popen(
            [*voicecoach_command(), "session", *args],
            env=env or self.env,
            text=True,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )


@pytest.fixture(scope="module")
def coach(pulse: PulseServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coach]:
    state = tmp_path_factory.mktemp("state")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VOICECOACH_STATE_DIR", str(state))
        pack = load_pack("sv")
        clips = ClipCache(paths.clip_dir(state), pack.voice, DEFAULT_RATE_WPM, RATE)
        yield Coach(pulse, {**pulse.environ(), "VOICECOACH_STATE_DIR": str(state)}, clips)


def played_out(recording: Recording) -> np.ndarray:
    """Stop recording once half a second more has come through, so the last cue's tail is in it."""
    recording.wait_for(recording.frames + RATE // 2)
    return recording.stop()


def unexplained_sound(samples: np.ndarray, onsets: list[Onset], clips: ClipCache) -> list[float]:
    """Times (s) of loud samples that no found cue accounts for: sound that was never planned."""
    covered = np.zeros(samples.size, dtype=bool)
    margin = round(TOLERANCE_S * RATE)
    for onset in onsets:
        start = round(onset.heard * RATE)
        covered[max(0, start - margin) : start + clips.clip(onset.text).size + margin] = True
    stray = np.flatnonzero((np.abs(samples) > SILENT) & ~covered)
    return sorted({round(i / RATE, 1) for i in stray})


def test_live_cues_are_heard_where_the_timeline_puts_them(coach: Coach) -> None:
    planned = planned_cues(SHORT_SET, coach.env)
    recording = coach.record()
    process = coach.session(SHORT_SET, stdin=subprocess.DEVNULL)
    stdout, stderr = process.communicate(timeout=float(planned[-1]["t"]) + HANG_S)
    samples = played_out(recording)

    assert process.returncode == 0, stderr
    assert [line.split(": ", 1)[1] for line in stdout.splitlines()] == [c["text"] for c in planned]
    onsets = cue_onsets(samples, RATE, [(float(c["t"]), str(c["text"])) for c in planned], coach.clips.clip)
    latency = fixed_latency(onsets)
    wrong = [
        (o.text, o.planned, round((o.error - latency) * 1000, 1), round(o.score, 3))
        for o in onsets
        if abs(o.error - latency) > TOLERANCE_S or o.score < WHOLE
    ]
    assert wrong == [], "cues (text, planned s, error ms, match) off their place or not heard whole"
    assert unexplained_sound(samples, onsets, coach.clips) == []


class Lines:
    """A process's stdout lines as they come, read on a thread so the test can wait for one."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.SimpleQueue[str] = queue.SimpleQueue()
        threading.Thread(target=self._read, args=(process,), daemon=True).start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self._queue.put(line.rstrip("\n"))

    def wait_for(self, ending: str) -> str:
        """The next line that ends with ending (a printed cue is '  12.34  hold 1: Knip')."""
        while True:
            line = self._queue.get(timeout=HANG_S)
            self.seen.append(line)
            if line.endswith(ending):
                return line


def cue_time(line: str) -> float:
    return float(line.split()[0])


def say(process: subprocess.Popen[str], command: str) -> None:
    assert process.stdin is not None
    process.stdin.write(command + "\n")
    process.stdin.flush()


def test_typed_pause_resume_and_stop_in_a_live_session(coach: Coach) -> None:
    hold_s = 5
    args = ["strength", "--reps", "3", "--hold", str(hold_s), "--rest", "3"]
    pack = load_pack("sv")
    paused, restart, stopped = (pack.cues[key] for key in ("paused", "restart_rep", "stopped"))
    recording = coach.record()
    process = coach.session(args, stdin=subprocess.PIPE)
    lines = Lines(process)

    squeeze = cue_time(lines.wait_for("hold 1: Knip"))
    say(process, "paus")
    pause_at = cue_time(lines.wait_for(f": {paused}"))
    # Stay paused past the end the interrupted hold would have had (counted on the audio clock, not a timer),
    # so the silence checked below covers every count that the pause must have cut.
    recording.wait_for(recording.frames + (hold_s + 1) * RATE)
    say(process, "fortsätt")
    restart_at = cue_time(lines.wait_for(f": {restart}"))
    squeeze_again = cue_time(lines.wait_for("hold 1: Knip"))
    lines.wait_for("hold 1: ett")
    say(process, "stopp")
    lines.wait_for(f": {stopped}")
    _, stderr = process.communicate(timeout=HANG_S)
    samples = played_out(recording)

    assert process.returncode == 0, stderr
    said = [line.split(": ", 1)[1] for line in lines.seen]
    assert said[said.index(paused) :][:3] == [paused, restart, "Knip"], "the rep starts over, nothing said between"

    said_paused = find_clip(samples, coach.clips.clip(paused), 0, samples.size)
    said_restart = find_clip(samples, coach.clips.clip(restart), 0, samples.size)
    said_stopped = find_clip(samples, coach.clips.clip(stopped), 0, samples.size)
    assert min(m.score for m in (said_paused, said_restart, said_stopped)) > WHOLE
    silence_from = said_paused.sample + coach.clips.clip(paused).size
    assert np.abs(samples[silence_from : said_restart.sample]).max() < SILENT, "sound while paused"
    # The silence must reach past where the rest of the interrupted hold would have been said.
    assert (said_restart.sample - said_paused.sample) / RATE > squeeze + hold_s - pause_at

    knip = coach.clips.clip("Knip")
    expected = said_restart.sample + round((squeeze_again - restart_at) * RATE)
    # Printed times have two decimals, hence the extra 5 ms.
    heard = find_clip(samples, knip, expected, round((TOLERANCE_S + 0.005) * RATE))
    assert heard.score > WHOLE and abs(heard.sample - expected) / RATE <= TOLERANCE_S + 0.005

    after_stop = samples[said_stopped.sample + coach.clips.clip(stopped).size :]
    assert after_stop.size > 0 and np.abs(after_stop).max() < SILENT, "sound after 'Avslutat.'"


def test_a_session_plays_at_the_configured_volume_brought_down_by_her_level(coach: Coach, tmp_path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    # Her level by day and by night alike, so that the hour the test runs at does not matter.
    volume.save(state, volume.Levels(-12.0, -12.0))
    settings = tmp_path / "config.toml"
    settings.write_text("[audio]\nvolume = 0.5\n")
    args = [*SHORT_SET, "--reps", "1", "--config", str(settings)]
    env = {**coach.env, "VOICECOACH_STATE_DIR": str(state)}
    planned = planned_cues(args, env)
    recording = coach.record()
    process = coach.session(args, subprocess.DEVNULL, env)
    _stdout, stderr = process.communicate(timeout=float(planned[-1]["t"]) + HANG_S)
    samples = played_out(recording)
    assert process.returncode == 0, stderr
    (intro, *_rest) = cue_onsets(samples, RATE, [(float(c["t"]), str(c["text"])) for c in planned], coach.clips.clip)
    clip = coach.clips.clip(intro.text)
    start = round(intro.heard * RATE)
    heard_db = 20 * np.log10(np.std(samples[start : start + clip.size]) / np.std(clip))
    assert heard_db == pytest.approx(20 * np.log10(0.5) - 12.0, abs=1.0)


def test_louder_typed_in_a_hold_raises_the_level_at_once_moves_no_cue_and_is_said_in_a_pause(
    coach: Coach, tmp_path
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    volume.save(state, volume.Levels(-12.0, None))
    settings = tmp_path / "config.toml"
    # The day's level, whatever the hour the test runs at.
    settings.write_text('[reminders]\nquiet_hours = ""\n')
    args = ["strength", "--reps", "2", "--hold", "5", "--rest", "4", "--config", str(settings)]
    env = {**coach.env, "VOICECOACH_STATE_DIR": str(state)}
    planned = planned_cues(args, env)
    recording = coach.record()
    process = coach.session(args, subprocess.PIPE, env)
    lines = Lines(process)
    lines.wait_for("hold 1: två")
    say(process, "högre")
    said_back = "Volym åtta."
    lines.wait_for(said_back)
    _, stderr = process.communicate(timeout=float(planned[-1]["t"]) + HANG_S)
    samples = played_out(recording)
    assert process.returncode == 0, stderr
    assert volume.load(state) == volume.Levels(-9.0, None)

    # Found by the clips the session rendered: espeak-ng does not say every phrase quite the same twice (the
    # module's cache, rendered by other sessions, matched 0.64).
    clips = ClipCache(paths.clip_dir(state), load_pack("sv").voice, DEFAULT_RATE_WPM, RATE)
    # Every planned cue where the timeline put it: the change moved nothing.
    onsets = cue_onsets(samples, RATE, [(float(c["t"]), str(c["text"])) for c in planned], clips.clip)
    latency = fixed_latency(onsets)
    wrong = [(o.text, o.planned) for o in onsets if abs(o.error - latency) > TOLERANCE_S or o.score < WHOLE]
    assert wrong == [], "cues off their place or not heard whole after 'högre'"

    def level_db(onset: Onset) -> float:
        clip = clips.clip(onset.text)
        start = round(onset.heard * RATE)
        return float(20 * np.log10(np.std(samples[start : start + clip.size]) / np.std(clip)))

    squeezes = [o for o in onsets if o.text == "Knip"]
    assert level_db(squeezes[1]) - level_db(squeezes[0]) == pytest.approx(3.0, abs=0.5)
    # The level said back whole, over none of the planned cues.
    said = clips.clip(said_back)
    back = find_clip(samples, said, 0, samples.size)
    assert back.score > WHOLE
    back_end = back.sample + said.size
    for o in onsets:
        start = round(o.heard * RATE)
        assert start + clips.clip(o.text).size <= back.sample or start >= back_end, f"said over {o.text!r}"
