"""`voicecoach run`: the always-on coach. Wiring only: configuration, audio devices, voice, the control socket,
systemd (sd_notify, watchdog, signals). What happens in a set is the coach's business.

One process, one event loop thread. The only other threads are PortAudio's callbacks, which hand over
their blocks with call_soon_threadsafe.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any

import numpy as np

from voicecoach import config, paths
from voicecoach.assembly import Assembly
from voicecoach.coach import Coach, phrases_to_render, sentences_of
from voicecoach.daemon.control import ControlServer, DaemonStatus, Reply, Request, failed, ok, socket_path
from voicecoach.daemon.devices import Devices
from voicecoach.daemon.loudness import Loudness
from voicecoach.daemon.notify import Notifier, Watchdog, ping_interval
from voicecoach.engine.language import Pack, PackError, load_pack
from voicecoach.engine.programme import EXERCISES, Exercise
from voicecoach.engine.session import Outcome, State
from voicecoach.engine.timeline import Phase
from voicecoach.intents import CONVERSATION, Intent, Mode, Name
from voicecoach.listen.voice import Voice, VoiceUnavailable, open_voice
from voicecoach.sound import audio, counts, volume
from voicecoach.sound.audio import AudioError, Device, InputStream, OutputStream
from voicecoach.sound.clips import DISK_BUDGET, SpeechError
from voicecoach.sound.mixer import Mixer, MixerEvent
from voicecoach.sound.speech import configured_cache
from voicecoach.training.conversation import Conversation
from voicecoach.training.dialogue import QUESTION
from voicecoach.training.journal import Journal, JournalUnavailable
from voicecoach.training.journal_queue import QueuedJournal
from voicecoach.training.progress_texts import Pieces, journal_off_text, load_phrases, notices, to_render

log = logging.getLogger("voicecoach")

# Without a systemd watchdog the supervisor still checks the devices this often.
TICK_S = 5.0
FALLBACK_RATE = 48000
# While speech renders before the service is ready, systemd hears this often that the start goes on.
WARM_NOTICE_S = 5.0
# Rendering ahead what is said between sets looks this often whether a set has ended.
BETWEEN_WAIT_S = 1.0
# A `ctl say` is refused while more than this much speech waits to be said: 50 long ones once queued 29 minutes.
MAX_SPEAKING_S = 60.0


class Daemon:
    def __init__(self, cfg: config.Config, notifier: Notifier, reload: Callable[[], config.Config]) -> None:
        self.cfg = cfg
        self.notifier = notifier
        self._reload = reload
        try:
            pack = load_pack(cfg.language, cfg.speech.pack)
            self.pack: Pack = replace(pack, ticks=counts.load(cfg.state_dir, cfg.speech.counts) == config.TICKS)
            self._phrases = load_phrases(cfg.language, cfg.speech.pack)
        except PackError as exc:
            raise config.ConfigError(f"speech.pack: {exc}") from None
        self._status_text = ""
        self._stop = asyncio.Event()
        self.watchdog = Watchdog(notifier, self._on_part_failed)

    # -- start-up --------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        try:
            rate = audio.resolve_output(self.cfg.audio.output_device).default_rate
        except AudioError as exc:
            # The speaker may be plugged in later; PulseAudio and ALSA's plugins take any rate.
            log.error("%s; will keep trying", exc)
            rate = FALLBACK_RATE
        self.clips = configured_cache(self.cfg, self.pack.voice, rate, disk_budget=DISK_BUDGET)
        self.journal = self._open_journal()
        # Applied to the mixer by the coach, who has it.
        self.loudness = Loudness(self.cfg.state_dir, self.cfg.audio, self.cfg.reminders)
        self.parts = Assembly(loop, rate, self.loudness.gain, self._make_coach, self._open_voice, self._on_mixer_event)
        self.mixer, self.coach, self.voice = self.parts.mixer, self.parts.coach, self.parts.voice
        self.conversation = Conversation(
            self.journal, self._phrases, self.cfg.rules, self.cfg.reminders, self._say, self._exercise
        )
        self._warm_clips()
        self.devices = Devices(
            self._open_speaker,
            lambda _s: self.mixer.position,
            self._open_microphone,
            self.voice is not None,
            lambda: self._say(self.pack.cues["audio_back"]),
            self._on_microphone_up,
        )
        for sig, handler in (
            (signal.SIGTERM, self._stop.set),
            (signal.SIGINT, self._stop.set),
            (signal.SIGHUP, self._on_hup),
        ):
            loop.add_signal_handler(sig, handler)
        requests: asyncio.Queue[Request] = asyncio.Queue()
        async with ControlServer(socket_path(self.cfg.state_dir), requests) as control:
            self.devices.check()
            self._say(self.pack.cues["ready"])
            self.notifier.ready(self._status())
            self._status_text = self._status()
            log.info("ready: %s", self._status_text)
            tasks = [self._task("control", self._serve(requests)), self._task("supervisor", self._supervise())]
            # Not watched: when it is done, it ends.
            tasks.append(asyncio.create_task(self._render_between()))
            self.watchdog.watch("control", control.problem)
            await self._stop.wait()
            await self._shut_down(tasks)
        return 0

    def _open_journal(self) -> Journal | None:
        try:
            # Writes never wait for another process's lock here: the loop keeps the audio and the watchdog going.
            return QueuedJournal.open(paths.journal_path(self.cfg.state_dir))
        except JournalUnavailable as exc:
            log.error("%s", exc)
            return None

    def _make_coach(self, mixer: Mixer) -> Coach:
        return Coach(
            mixer,
            self.clips,
            self.pack,
            self.cfg.exercise,
            self.journal,
            on_set_end=self._on_set_end,
            journal_off_notice=None if self.journal else journal_off_text(self._phrases),
            loudness=self.loudness,
        )

    def _open_voice(self, mixer: Mixer) -> Voice | None:
        try:
            return open_voice(self.cfg, mixer)
        except VoiceUnavailable as exc:
            if self.cfg.listen.voice_required:
                raise config.ConfigError(f"{exc}; voice is required by listen.voice_required") from None
            log.error("%s; sessions can still be started with 'voicecoach ctl start'", exc)
            return None

    def _open_speaker(self) -> OutputStream:
        # Resolved again on every attempt: a device plugged back in may come back with another index.
        return OutputStream(audio.resolve_output(self.cfg.audio.output_device), self.mixer)

    def _on_microphone_up(self) -> None:
        if self.voice is not None:
            self.voice.reset()

    def _open_microphone(self) -> InputStream:
        if self.voice is None:
            raise AudioError("no speech model, so the microphone is not used")
        device: Device = audio.resolve_device(self.cfg.audio.input_device, "input")
        return InputStream(device, self.voice.rate, self.parts.on_block(self._on_mic))

    def _warm_clips(self) -> None:
        """Render every phrase of every exercise now, so a set never waits for speech synthesis, and every notice,
        so that saying what went wrong cannot itself fail to render. With a Piper voice on a Pi the first start
        takes a minute or so (`voicecoach voice fetch` renders them ahead), past the 90 s systemd gives a start by
        default: every WARM_NOTICE_S it is told that the start goes on, and how far it is."""
        exercises = [self.cfg.exercise(e.key) for e in EXERCISES]
        texts = phrases_to_render(exercises, self.pack, notices(self._phrases), self.clips.duration)
        started = time.monotonic()
        render_telling(texts, self.clips.keep, self.notifier)
        log.info("%d phrases ready in %.1f s", len(texts), time.monotonic() - started)
        # What is said between sets is rendered ahead (by `voice fetch`/`voice render`, or _render_between once
        # ready): kept on the disk. Clips left by earlier runs count against the disk budget too.
        between = sentences_of(to_render(self._phrases))
        self.clips.spare(between)
        self.clips.prune()
        self._unrendered = self.clips.missing(between)

    async def _render_between(self) -> None:
        """Render what is said between sets that is not on the disk yet (after a new voice, rate or pack), a phrase
        at a time while the coach is idle. With a Piper voice on a Pi that is minutes of work: done before ready,
        it would keep her from starting a set; left to first use, each answer would wait seconds for its render.
        A render holds up the loop (and a command heard meanwhile) for as long as it takes, so never in a set."""
        if not self._unrendered:
            return
        total = len(self._unrendered)
        log.info("rendering %d phrases said between sets, while idle", total)
        started = time.monotonic()
        try:
            while self._unrendered:
                while self._state() != Mode.IDLE:
                    await asyncio.sleep(BETWEEN_WAIT_S)
                if not self.clips.store(self._unrendered[0]):
                    log.info("stopped rendering ahead: the clip cache cannot be written")
                    return
                self._unrendered.pop(0)
                # Requests and commands that came in meanwhile go first.
                await asyncio.sleep(0)
        except SpeechError as exc:
            # Rendered again when said, and that failure said then.
            log.error("rendering ahead stopped: %s", exc)
            return
        except Exception:
            # A bug, but in work that is only ahead of time: the coach goes on without it.
            log.exception("rendering ahead failed")
            return
        finally:
            self._unrendered.clear()
        log.info("%d phrases said between sets rendered, %.1f s after ready", total, time.monotonic() - started)

    # -- the loop's work -------------------------------------------------------------------

    async def _serve(self, requests: asyncio.Queue[Request]) -> None:
        while True:
            request = await requests.get()
            request.reply(self._answer(request.intent))

    def _answer(self, intent: Intent) -> Reply:
        """Carry out a request from `ctl` or the microphone. One that fails is answered with the error (and said, in
        the pack's language, for whoever hears nothing); it never ends the serving."""
        if intent.name is Name.STATUS:
            return DaemonStatus(**self._status_fields()).as_reply()
        self._follow_the_clock()
        if intent.name is Name.VOLUME:
            message = self.coach.change_volume(volume.parse_request(intent.level))
            return ok(message=message, volume_db=self.loudness.level_db, night=self.loudness.night)
        if intent.name is Name.SAY and self.coach.speaking_s() > MAX_SPEAKING_S:
            queued = f"{self.coach.speaking_s():.0f} s of speech wait"
            return failed(f"{queued} to be said already: wait, or end it with 'voicecoach ctl stop'")
        try:
            accepted = self._handle(intent)
        except SpeechError as exc:
            log.error("%s", exc)
            self._notice("failed")
            return failed(str(exc))
        except Exception as exc:
            log.exception("%s failed", intent.name)
            self._notice("failed")
            return failed(f"{intent.name} failed ({type(exc).__name__}: {exc}); see the daemon's log")
        return ok() if accepted else failed(f"{intent.name} means nothing now ({self.coach.state})")

    def _status_fields(self) -> dict[str, Any]:
        return {
            **self.coach.status(),
            "microphone": self.devices.microphone.up,
            "speaker": self.devices.speaker.up,
            "model": self.voice is not None,
            "question": self._state() == QUESTION,
            "reminders": self.conversation.reminder_status(),
            "voice_fallback": self.clips.fallback,
            "rendering": len(self._unrendered),
            "volume_db": self.loudness.level_db,
            "night": self.loudness.night,
            "counts": config.TICKS if self.pack.ticks else config.WORDS,
        }

    def _follow_the_clock(self) -> None:
        self.loudness.follow_the_clock(quiet=self.coach.state is Mode.IDLE and not self.coach.speaking_s())

    def _state(self) -> str:
        """What the listener listens for: the coach's state, or the answer to a question the coach asked."""
        return self.conversation.state(self.coach.state, time.monotonic())

    def _handle(self, intent: Intent) -> bool:
        state = self._state()
        if intent.name in CONVERSATION:
            accepted = self.conversation.handle(intent, state)
        elif intent.name is Name.START_NEXT and self.coach.state is Mode.IDLE:
            self.coach.start(self.conversation.next_exercise())
            accepted = True
        elif intent.name is Name.HELP:
            self._say(self._help_text(state))
            accepted = True
        elif intent.name in (Name.COUNT_TICKS, Name.COUNT_WORDS) and self.coach.state is Mode.IDLE:
            self._count(ticks=intent.name is Name.COUNT_TICKS)
            accepted = True
        else:
            accepted = self.coach.handle(intent)
        # A set started, or what was being said stopped: a question waiting for its answer is dropped.
        if accepted and (self.coach.state is Mode.SESSION or intent.name is Name.STOP):
            self.conversation.session_started()
        self._update_status()
        return accepted

    def _count(self, ticks: bool) -> None:
        """Count the seconds of a hold with ticks, or aloud, from the next set on, and keep it (sound/counts.py)."""
        self.pack = replace(self.pack, ticks=ticks)
        self.coach.pack = self.pack
        try:
            counts.save(self.cfg.state_dir, config.TICKS if ticks else config.WORDS, self.cfg.speech.counts)
        except OSError as exc:
            log.warning("how to count cannot be kept in %s (%s): it lasts until a restart", self.cfg.state_dir, exc)
        self._say(self.pack.cues["count_ticks" if ticks else "count_words"])

    def _help_text(self, state: str) -> str:
        # Not "stopp": between sets it only silences the coach, who would be saying a word it listens for.
        phrases = [c.phrase for c in self.pack.commands if state in c.states and c.intent != "stop"]
        return self.pack.cues["help"].format(phrases=", ".join(phrases))

    def _on_mic(self, block: np.ndarray, adc_time: float | None) -> None:
        if self.voice is None or "listener" in self.watchdog.failed:
            return
        try:
            # _answer catches what carrying a command out raises: what is caught here is the listener's.
            self.parts.hear(block, adc_time, self._state(), self._route)
        except Exception as exc:
            self.watchdog.fail("listener", exc)
            return
        echo = self.voice.echo_report()
        if echo is not None:
            advice = "" if echo.heard_over_coach else "; run 'voicecoach check audio' for advice"
            log.info("%s: %s%s", echo.summary(), ", ".join(echo.verdicts), advice)

    def _route(self, intent: Intent) -> bool:
        log.info("heard %s", intent.name)
        return self._answer(intent)["ok"] is True

    def _on_mixer_event(self, event: MixerEvent) -> None:
        try:
            self.coach.on_mixer_event(event)
        except Exception as exc:
            # What was played is no longer followed: sets would neither be recorded nor end.
            self.watchdog.fail("audio", exc)
        self._update_status()

    def _exercise(self, key: str) -> Exercise:
        return self.cfg.exercise(key)

    def _on_set_end(self, outcome: Outcome) -> None:
        self.conversation.set_ended(outcome, time.monotonic())
        self._update_status()

    def _say(self, text: str | Pieces) -> float:
        """Say text between sets; how long it takes. If it cannot be rendered, that is logged, and said instead."""
        try:
            return self.coach.say(text)
        except SpeechError as exc:
            log.error("%s", exc)
            self._notice("failed")
            return 0.0

    def _notice(self, key: str) -> None:
        """Say one of the pack's notices, which were rendered at start-up and are kept."""
        self.coach.handle(Intent(Name.SAY, text=self.pack.cues[key]))

    def _task(self, part: str, work: Coroutine[object, object, None]) -> asyncio.Task[None]:
        """Run work, a part the watchdog vouches for: if it ends, the watchdog hears so."""
        task = asyncio.create_task(work)

        def ended(t: asyncio.Task[None]) -> None:
            if not t.cancelled():
                self.watchdog.fail(part, t.exception() or "it ended")

        task.add_done_callback(ended)
        return task

    def _on_part_failed(self, _part: str) -> None:
        if self.notifier.watchdog_s:
            # She would hear nothing until systemd has restarted the service.
            self._notice("restarting")

    async def _supervise(self) -> None:
        """Keeps the devices open and tells the systemd watchdog that the loop and the audio threads live."""
        interval = min(TICK_S, ping_interval(self.notifier.watchdog_s)) if self.notifier.watchdog_s else TICK_S
        glitches: dict[str, int] = {}
        while True:
            await asyncio.sleep(interval)
            self.devices.check()
            self.devices.log_glitches(glitches)
            self.conversation.tick(busy=self._state() != Mode.IDLE)
            self._follow_the_clock()
            self.watchdog.ping()

    # -- status, reload, stop --------------------------------------------------------------

    def _status(self) -> str:
        status = self.pack.status
        session = self.coach.session
        if session is not None:
            st = session.status(self.coach.now())
            if st.state is State.PAUSED:
                return status["paused"]
            name = self.pack.exercises[session.exercise.key]["short"]
            rep = st.rep if st.rep is not None and st.phase is not Phase.INTRO else max(st.reps_done, 1)
            return status["session"].format(name=name, rep=rep, reps=st.reps_total)
        return status["listening"] if self.voice is not None else status["no_model"]

    def _update_status(self) -> None:
        text = self._status()
        if text != self._status_text:
            self._status_text = text
            self.notifier.status(text)

    def _on_hup(self) -> None:
        self.notifier.reloading()
        try:
            cfg = self._reload()
        except config.ConfigError as exc:
            log.error("reload refused, keeping the running configuration: %s", exc)
        except Exception:
            # A bug, not the file: still keep what runs, and still tell systemd the reload is over.
            log.exception("reload failed, keeping the running configuration")
        else:
            restart = [
                k for k in ("language", "listen", "speech", "state_dir") if getattr(cfg, k) != getattr(self.cfg, k)
            ]
            if (
                cfg.audio.input_device != self.cfg.audio.input_device
                or cfg.audio.output_device != self.cfg.audio.output_device
            ):
                restart.append("audio devices")
            self.cfg = replace(
                self.cfg,
                audio=replace(self.cfg.audio, volume=cfg.audio.volume, night_volume_db=cfg.audio.night_volume_db),
                programme=cfg.programme,
                rules=cfg.rules,
                reminders=cfg.reminders,
            )
            self.loudness.configure(self.cfg.audio, self.cfg.reminders)
            self.coach.set_exercises(self.cfg.exercise)
            self.conversation.configure(cfg.rules, cfg.reminders)
            log.info(
                "configuration reloaded%s", f"; {', '.join(restart)} take effect after a restart" if restart else ""
            )
        self.notifier.ready(self._status())

    async def _shut_down(self, tasks: list[asyncio.Task[None]]) -> None:
        self.notifier.stopping()
        for task in tasks:
            task.cancel()
        self.coach.abandon()
        self.devices.close()
        if self.journal is not None:
            self.journal.close()
        log.info("stopped")


def render_telling(
    texts: list[str], render: Callable[[str], object], notifier: Notifier, clock: Callable[[], float] = time.monotonic
) -> None:
    """render each text, telling systemd every WARM_NOTICE_S that the start goes on and how far it is."""
    told = clock()
    for n, text in enumerate(texts, 1):
        render(text)
        if clock() - told >= WARM_NOTICE_S:
            told = clock()
            notifier.starting(f"rendering speech: {n} of {len(texts)} phrases", 6 * WARM_NOTICE_S)
