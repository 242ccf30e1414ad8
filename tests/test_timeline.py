from dataclasses import replace

import pytest
from conftest import fake_duration

from voicecoach.engine.programme import ENDURANCE, EXERCISES, IDENTIFICATION, SPEED, STRENGTH, with_overrides
from voicecoach.engine.timeline import COUNTED_MAX_S, TICK, Layout, Phase


def cues_of(exercise, pack, t0=0.0):
    return Layout(exercise, pack, fake_duration).full_set(t0)


def squeezes(timeline, pack, exercise):
    return [c for c in timeline.cues if c.text == pack.squeeze(exercise)]


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.key)
@pytest.mark.parametrize("lang", ["sv", "en"])
def test_every_exercise_has_intro_all_reps_and_a_close(exercise, lang, sv, en):
    pack = {"sv": sv, "en": en}[lang]
    timeline = cues_of(exercise, pack)
    assert timeline.cues[0].phase is Phase.INTRO and timeline.cues[0].t == 0.0
    assert timeline.cues[-1].phase is Phase.DONE
    assert len(squeezes(timeline, pack, exercise)) == exercise.reps
    assert [c.t for c in timeline.cues] == sorted(c.t for c in timeline.cues)


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.key)
def test_no_cue_overlaps_the_next(exercise, sv):
    timeline = cues_of(exercise, sv)
    for before, after in zip(timeline.cues, timeline.cues[1:], strict=False):
        assert before.t + fake_duration(before.text) <= after.t, (before, after)


def test_strength_counts_land_on_whole_seconds_after_the_squeeze(sv):
    timeline = cues_of(STRENGTH, sv)
    for rep in range(1, STRENGTH.reps + 1):
        hold = [c for c in timeline.cues if c.rep == rep and c.phase is Phase.HOLD]
        squeeze = hold[0]
        assert squeeze.text == "Knip"
        counts = {c.text: c.t - squeeze.t for c in hold[1:]}
        assert counts == pytest.approx({"ett": 1, "två": 2, "tre": 3, "fyra": 4, "fem": 5})


def test_release_follows_the_last_count_and_rest_lasts_the_rest_time(sv):
    timeline = cues_of(STRENGTH, sv)
    texts = [c.text for c in timeline.cues]
    first_release = texts.index("Släpp långsamt")
    assert texts[first_release - 1] == "fem"
    rest = next(c for c in timeline.cues if c.text == "Vila")
    next_squeeze = squeezes(timeline, sv, STRENGTH)[1]
    assert next_squeeze.t - rest.t == pytest.approx(STRENGTH.rest_s)


def test_each_repetition_is_announced_before_its_squeeze(sv):
    timeline = cues_of(STRENGTH, sv)
    announcements = [c for c in timeline.cues if c.text.endswith("av tio")]
    assert [a.text for a in announcements[:3]] == ["Första av tio", "Andra av tio", "Tredje av tio"]
    assert announcements[4].text == "Femte av tio"
    for announcement, squeeze in zip(announcements, squeezes(timeline, sv, STRENGTH), strict=True):
        assert announcement.rep == squeeze.rep
        assert 0 < squeeze.t - announcement.t < 3


def test_speed_releases_quickly(sv):
    texts = [c.text for c in cues_of(SPEED, sv).cues]
    assert "Släpp" in texts and "Släpp långsamt" not in texts


def test_identification_intro_gives_the_guides_instructions(sv):
    intro = cues_of(IDENTIFICATION, sv).cues[0].text
    for words in ("rygg", "böjda knän", "ändtarmen", "tampong", "släpp långsamt"):
        assert words in intro


def test_endurance_hold_announces_time_left_instead_of_every_second(sv):
    timeline = cues_of(ENDURANCE, sv)
    squeeze = squeezes(timeline, sv, ENDURANCE)[0]
    hold = [c for c in timeline.cues if c.rep == 1 and c.phase is Phase.HOLD][1:]
    said = {c.text: c.t - squeeze.t for c in hold}
    assert said["tjugo sekunder kvar"] == pytest.approx(10)
    assert said["tio sekunder kvar"] == pytest.approx(20)
    assert said["tre"] == pytest.approx(27)
    assert said["ett"] == pytest.approx(29)
    assert len(hold) < ENDURANCE.hold_s / 4
    release = next(c for c in timeline.cues if c.phase is Phase.RELEASE)
    assert release.t - squeeze.t == pytest.approx(ENDURANCE.hold_s)


def test_two_minute_hold_says_minutes_left(sv):
    timeline = cues_of(with_overrides(ENDURANCE, hold_s=120), sv)
    squeeze = squeezes(timeline, sv, ENDURANCE)[0]
    said = {c.text: c.t - squeeze.t for c in timeline.cues if c.rep == 1 and c.phase is Phase.HOLD}
    assert said["en och en halv minut kvar"] == pytest.approx(30)
    assert said["en minut kvar"] == pytest.approx(60)
    assert "två minuter kvar" not in said


def test_override_of_hold_rest_and_reps_changes_the_layout(sv):
    run = with_overrides(STRENGTH, hold_s=8, rest_s=10, reps=3)
    timeline = cues_of(run, sv)
    assert len(squeezes(timeline, sv, run)) == 3
    first = [c for c in timeline.cues if c.rep == 1 and c.phase is Phase.HOLD]
    assert first[-1].text == "åtta" and first[-1].t - first[0].t == pytest.approx(8)
    assert timeline.cues[1].text == "Första av tre"


def test_hold_longer_than_counted_maximum_switches_to_time_left(sv):
    timeline = cues_of(with_overrides(STRENGTH, hold_s=COUNTED_MAX_S + 5), sv)
    hold_texts = [c.text for c in timeline.cues if c.rep == 1 and c.phase is Phase.HOLD]
    assert "tio sekunder kvar" in hold_texts and "fem" not in hold_texts


def test_timeline_can_start_at_any_time(sv):
    a, b = cues_of(STRENGTH, sv, 0.0), cues_of(STRENGTH, sv, 100.0)
    assert [c.t + 100.0 for c in a.cues] == pytest.approx([c.t for c in b.cues])


def test_segments_tile_the_set_without_gaps(sv):
    timeline = cues_of(STRENGTH, sv)
    for before, after in zip(timeline.segments, timeline.segments[1:], strict=False):
        assert before.end == pytest.approx(after.start)
    assert timeline.end == timeline.segments[-1].end


def test_with_ticks_every_second_of_a_hold_is_a_tick_and_the_cues_stay_spoken(sv):
    ticking = replace(sv, ticks=True)
    timeline = cues_of(STRENGTH, ticking)
    numbers = set(sv.numbers.values())
    assert not [c for c in timeline.cues if c.text in numbers], "a number was said"
    for rep in range(1, STRENGTH.reps + 1):
        cues = [c for c in timeline.cues if c.rep == rep and c.phase in (Phase.HOLD, Phase.RELEASE)]
        squeeze, *ticks, release = cues
        assert (squeeze.text, release.text) == ("Knip", "Släpp långsamt")
        assert [c.text for c in ticks] == [TICK] * (STRENGTH.hold_s - 1)
        assert [c.t - squeeze.t for c in ticks] == pytest.approx(list(range(1, STRENGTH.hold_s)))
        # The release ends the hold on time, as the last number does when counted.
        assert release.t - squeeze.t == pytest.approx(STRENGTH.hold_s)
    # The rests are quiet but for what comes next; the repetitions are announced as before.
    words = cues_of(STRENGTH, sv)
    assert [c.text for c in timeline.cues if c.phase is Phase.REST] == [
        c.text for c in words.cues if c.phase is Phase.REST and c.text not in numbers
    ]


def test_with_ticks_a_long_hold_ticks_between_its_announcements_of_the_time_left(sv):
    timeline = cues_of(ENDURANCE, replace(sv, ticks=True))
    squeeze = squeezes(timeline, sv, ENDURANCE)[0]
    hold = [c for c in timeline.cues if c.rep == 1 and c.phase is Phase.HOLD][1:]
    said = {round(c.t - squeeze.t, 6): c.text for c in hold}
    assert said[10] == "tjugo sekunder kvar" and said[20] == "tio sekunder kvar"
    # Each second but those the squeeze and the announcements (fake_duration: longer than a second) are said over.
    ticks = sorted(t for t, text in said.items() if text == TICK)
    assert ticks == [t for t in range(1, ENDURANCE.hold_s) if t not in (1, 10, 11, 20, 21)]
    for before, after in zip(timeline.cues, timeline.cues[1:], strict=False):
        assert before.t + fake_duration(before.text) <= after.t, (before, after)
