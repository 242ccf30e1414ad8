import pytest
from conftest import fake_duration

from voicecoach.engine.programme import ENDURANCE, STRENGTH
from voicecoach.engine.session import Outcome, Session, SessionError, State
from voicecoach.engine.timeline import GUARD_S, Phase


def started(exercise, pack, t0=0.0):
    session = Session(exercise, pack, fake_duration)
    cues = session.start(t0).cues
    return session, cues


def hold_of(cues, rep):
    return [c for c in cues if c.rep == rep and c.phase is Phase.HOLD]


def test_start_gives_the_whole_set_and_runs(sv):
    session, cues = started(STRENGTH, sv)
    assert session.state is State.RUNNING
    assert cues[0].phase is Phase.INTRO
    assert session.end == pytest.approx(cues[-1].t + fake_duration(cues[-1].text))


def test_cannot_start_twice(sv):
    session, _ = started(STRENGTH, sv)
    with pytest.raises(SessionError):
        session.start(1.0)


def test_pause_mid_hold_cuts_and_says_paused(sv):
    session, cues = started(STRENGTH, sv)
    mid_hold = hold_of(cues, 3)[2].t + 0.1
    reaction = session.pause(mid_hold)
    assert reaction.cut is True
    assert [c.text for c in reaction.cues] == ["Paus."]
    assert reaction.cues[0].t == mid_hold
    assert session.state is State.PAUSED
    assert session.status(mid_hold + 60).state is State.PAUSED


def test_pause_mid_hold_restarts_that_rep(sv):
    session, cues = started(STRENGTH, sv)
    session.pause(hold_of(cues, 3)[2].t + 0.1)
    reaction = session.resume(500.0)
    assert reaction.cut is True
    first = reaction.cues[0]
    assert first.text == "Vi tar om knipet." and first.t == 500.0
    squeeze = reaction.cues[1]
    assert (squeeze.text, squeeze.rep, squeeze.phase) == ("Knip", 3, Phase.HOLD)
    counts = [c for c in reaction.cues if c.rep == 3 and c.phase is Phase.HOLD][1:]
    assert [c.t - squeeze.t for c in counts] == pytest.approx([1, 2, 3, 4, 5])
    reps_left = {c.rep for c in reaction.cues if c.phase is Phase.HOLD}
    assert reps_left == set(range(3, STRENGTH.reps + 1))


def test_pause_mid_rest_continues_the_rest(sv):
    session, cues = started(STRENGTH, sv)
    rest = next(c for c in cues if c.text == "Vila" and c.rep == 2)
    next_squeeze = hold_of(cues, 3)[0]
    paused_at = rest.t + 1.2
    session.pause(paused_at)
    reaction = session.resume(300.0)
    assert reaction.cues[0].text == "Vi fortsätter vila."
    squeeze = next(c for c in reaction.cues if c.text == "Knip")
    assert squeeze.rep == 3
    remaining = next_squeeze.t - paused_at
    assert squeeze.t - 300.0 == pytest.approx(remaining)
    assert session.status(300.0).reps_done == 2


def test_resume_without_pause_does_nothing(sv):
    session, _ = started(STRENGTH, sv)
    assert session.resume(5.0) is None
    assert session.state is State.RUNNING


def test_pause_twice_is_ignored(sv):
    session, _cues = started(STRENGTH, sv)
    assert session.pause(20.0) is not None
    assert session.pause(21.0) is None


def test_pause_in_intro_replays_the_intro(sv):
    session, _cues = started(STRENGTH, sv)
    session.pause(1.0)
    reaction = session.resume(10.0)
    assert reaction.cues[0].phase is Phase.INTRO and reaction.cues[0].t == 10.0


def test_stop_cuts_and_ends(sv):
    session, _cues = started(STRENGTH, sv)
    reaction = session.stop(30.0)
    assert reaction.cut is True
    assert [c.text for c in reaction.cues] == ["Avslutat."]
    assert session.state is State.STOPPED
    assert session.stop(31.0) is None
    assert session.pause(31.0) is None


def test_stop_while_paused_ends(sv):
    session, _ = started(STRENGTH, sv)
    session.pause(20.0)
    assert session.stop(25.0) is not None
    assert session.state is State.STOPPED


def test_set_finishes_when_its_timeline_has_been_said(sv):
    session, _cues = started(STRENGTH, sv)
    assert session.status(session.end - 0.01).state is State.RUNNING
    status = session.status(session.end)
    assert status.state is State.FINISHED
    assert status.reps_done == STRENGTH.reps and status.reps_left == 0
    assert session.pause(session.end + 1) is None


def test_repetition_counts_once_its_release_begins(sv):
    session, cues = started(STRENGTH, sv)
    release = next(c for c in cues if c.phase is Phase.RELEASE and c.rep == 4)
    assert session.status(release.t - 0.01).reps_done == 3
    status = session.status(release.t)
    assert (status.reps_done, status.phase, status.rep) == (4, Phase.RELEASE, 4)


def test_pause_in_endurance_hold_restarts_the_long_hold(sv):
    session, cues = started(ENDURANCE, sv)
    squeeze = hold_of(cues, 1)[0]
    session.pause(squeeze.t + 25)
    reaction = session.resume(1000.0)
    resqueeze = next(c for c in reaction.cues if c.phase is Phase.HOLD)
    release = next(c for c in reaction.cues if c.phase is Phase.RELEASE)
    assert release.t - resqueeze.t == pytest.approx(ENDURANCE.hold_s)


def test_phrases_cover_everything_the_session_can_say(sv):
    session, cues = started(STRENGTH, sv)
    phrases = session.phrases()
    said = {c.text for c in cues}
    said |= {c.text for c in session.pause(hold_of(cues, 2)[1].t).cues}
    said |= {c.text for c in session.resume(400.0).cues}
    said |= {c.text for c in session.stop(410.0).cues}
    assert said <= phrases


def test_cant_ends_the_set_kindly_and_remembers_why(sv):
    session, cues = started(STRENGTH, sv)
    reaction = session.cant(hold_of(cues, 4)[2].t)
    assert reaction.cut is True
    assert [c.text for c in reaction.cues] == ["Det är helt okej. Vi avslutar omgången här."]
    assert session.state is State.STOPPED
    assert session.outcome is Outcome.COULD_NOT_FINISH
    assert session.status(reaction.cues[0].t).reps_done == 3


def test_next_skips_the_rest_of_the_exercise(sv):
    session, _ = started(STRENGTH, sv)
    reaction = session.next(20.0)
    assert [c.text for c in reaction.cues] == ["Vi går vidare."]
    assert session.outcome is Outcome.SKIPPED


def test_stop_is_recorded_as_stopped_and_a_full_set_as_completed(sv):
    stopped, _ = started(STRENGTH, sv)
    stopped.stop(20.0)
    assert stopped.outcome is Outcome.STOPPED
    finished, _ = started(STRENGTH, sv)
    finished.status(finished.end)
    assert finished.outcome is Outcome.COMPLETED


def test_how_many_left_counts_the_current_rep_and_does_not_cut(sv):
    session, cues = started(STRENGTH, sv)
    during_third = hold_of(cues, 3)[1].t
    reaction = session.how_many_left(during_third)
    assert reaction.cut is False
    assert [c.text for c in reaction.cues] == ["åtta kvar"]
    assert session.state is State.RUNNING


def test_how_many_left_in_the_last_rep_says_it_is_the_last(sv):
    session, cues = started(STRENGTH, sv)
    reaction = session.how_many_left(hold_of(cues, STRENGTH.reps)[1].t)
    assert [c.text for c in reaction.cues] == ["Det här är det sista knipet."]


def test_repeat_says_the_instructions_and_redoes_the_unfinished_rep(sv):
    session, cues = started(STRENGTH, sv)
    reaction = session.repeat(hold_of(cues, 6)[3].t)
    assert reaction.cut is True
    assert reaction.cues[0].phase is Phase.INTRO
    assert reaction.cues[1].text == "Sjätte av tio"
    assert {c.rep for c in reaction.cues if c.phase is Phase.HOLD} == set(range(6, 11))


def test_repeat_while_paused_resumes(sv):
    session, cues = started(STRENGTH, sv)
    session.pause(hold_of(cues, 2)[2].t)
    assert session.repeat(100.0) is not None
    assert session.state is State.RUNNING


def spans(cues):
    return [(c.t, c.t + fake_duration(c.text)) for c in cues]


def overlaps(span, others, guard=GUARD_S):
    start, end = span
    return [o for o in others if start < o[1] + guard and o[0] < end + guard]


def test_said_between_waits_for_a_pause_it_fits_in_after_the_word_being_said(sv):
    """Her volume said back in a set: never over a count, nor over the word being said."""
    session, cues = started(STRENGTH, sv)
    in_a_count = hold_of(cues, 3)[2].t + 0.05  # "ett" is being said
    reaction = session.say_between(in_a_count, "Volym sju.")
    assert reaction.cut is False
    (cue,) = reaction.cues
    assert cue.rep is None and cue.text == "Volym sju."
    assert cue.t >= hold_of(cues, 3)[2].t + fake_duration(hold_of(cues, 3)[2].text) + GUARD_S
    assert overlaps(spans([cue])[0], spans(cues)) == []
    # The first such pause: nothing between the word and it would have held the phrase.
    earlier = [t for _, t in spans(cues) if in_a_count < t < cue.t - GUARD_S]
    for end in earlier:
        assert overlaps((end + GUARD_S, end + GUARD_S + fake_duration(cue.text)), spans(cues))
    # A second waits for the first.
    (second,) = session.say_between(in_a_count, "Volym åtta.").cues
    assert second.t > cue.t and overlaps(spans([second])[0], spans([*cues, cue])) == []


def test_said_between_while_paused_follows_the_pause_word(sv):
    session, cues = started(STRENGTH, sv)
    paused = session.pause(hold_of(cues, 2)[2].t).cues[0]
    (cue,) = session.say_between(paused.t + 0.1, "Volym sju.").cues
    assert cue.t == pytest.approx(paused.t + fake_duration(paused.text) + GUARD_S)


def test_what_is_said_on_the_side_of_a_release_records_no_repetition(sv):
    """A cue in the release phase with a repetition is where the shell records it done: how_many_left said in a
    release recorded that repetition twice."""
    session, cues = started(STRENGTH, sv)
    release = next(c for c in cues if c.phase is Phase.RELEASE and c.rep == 2)
    (left,) = session.how_many_left(release.t + 0.1).cues
    assert left.phase is Phase.RELEASE and left.rep is None
    (said,) = session.say_between(release.t, "Volym sju.").cues
    assert said.rep is None
