"""The daemon's configuration: TOML files in layers, validated into small frozen dataclasses.

Precedence, lowest first: built-in defaults, /etc/voicecoach/config.toml, $XDG_CONFIG_HOME/voicecoach/config.toml,
--config FILE, command-line flags, and $VOICECOACH_STATE_DIR (for the state directory only). Every effective value
remembers which of these it came from, so `voicecoach config show` can say why a value is what it is. state_dir is
the one answer to where the journal, the clips and the models are: the daemon and every command take it from here.

Each layer is validated on its own, so an error names the file that holds the bad value. The few checks that need
two keys at once ([reminders]) run on the merged values and name the file each key came from.
"""

from __future__ import annotations

import difflib
import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from voicecoach import config_values as check
from voicecoach import paths, voices
from voicecoach.config_values import Check, Invalid, shown
from voicecoach.config_values import toml_value as toml_value  # `config show` uses config.toml_value
from voicecoach.engine.programme import BOUNDS, EXERCISES, Exercise, ProgrammeError, find_exercise, with_overrides
from voicecoach.errors import UserError
from voicecoach.training.progression import DEFAULT_RULES, Rules
from voicecoach.training.reminders import (
    ReminderSettings,
    format_clock,
    format_quiet_hours,
    parse_clock,
    parse_quiet_hours,
    quiet_at,
)

SYSTEM_FILE = Path("/etc/voicecoach/config.toml")
# A configuration is a few kilobytes; reading stops here, so a huge file cannot take the memory.
MAX_BYTES = 1 << 20
DEFAULT = "default"
ENVIRONMENT = f"${paths.STATE_ENV}"
# espeak-ng speaks from 80 words a minute; above about 300 counting cues run together.
RATE_WPM = (80, 300)
DEFAULT_RATE_WPM = 160
# The command-line flags that override keys; `voicecoach run` adds them with add_override_arguments.
FLAGS: dict[str, str] = {
    "language": "--lang",
    "speech.pack": "--pack",
    "listen.model": "--model",
    "listen.commands": "--commands",
    "audio.input_device": "--input-device",
    "audio.output_device": "--output-device",
}
# The programme's TOML names for the Exercise fields they override, with the unit for messages.
PROGRAMME_FIELDS: dict[str, tuple[str, str]] = {
    "hold": ("hold_s", "seconds"),
    "rest": ("rest_s", "seconds"),
    "reps": ("reps", "repetitions"),
}
# [progression]: one key per progression.Rules field, with its bounds and unit.
RULE_BOUNDS: dict[str, tuple[int, int, str]] = {
    "days_to_move_on": (1, 30, "days"),
    "in_a_row": (*BOUNDS.reps, "repetitions"),
    "endurance_step_s": (1, 60, "seconds"),
    "endurance_sessions_per_step": (1, 10, "sessions"),
    "steady_months": (1, 12, "months"),
    "max_gap_days": (1, 30, "days"),
    "symptom_check_every_months": (1, 12, "months"),
    "diary_weeks": (1, 12, "weeks"),
    "leaks_fallen_percent": (10, 100, "percent"),
}
# TOML has no null: in_a_row = 0 stands for Rules.in_a_row = None.
OWN_SET = "the guide's 10 in a row"
# Her volume (sound/volume.py): dB under [audio] volume, from the quietest to the loudest; the night's to begin with.
VOLUME_MIN_DB = -30.0
VOLUME_MAX_DB = 0.0
NIGHT_VOLUME_DB = -9.0
# [speech] counts.
WORDS, TICKS = "words", "ticks"
COUNTS = (WORDS, TICKS)


class ConfigError(UserError):
    """A configuration file or flag that cannot be used; the message names the file, the key and what is allowed."""

    exit_code = 78  # EX_CONFIG: systemd's RestartPreventExitStatus=78 stops a restart loop on it


@dataclass(frozen=True)
class AudioSettings:
    """Devices are a name (or a unique part of one) or a PortAudio index; None is the system default."""

    input_device: str | int | None = None
    output_device: str | int | None = None
    # The loudest the coach speaks; her level (`ctl volume`, kept in the state directory) is so many dB under it.
    volume: float = 1.0
    # Her level during the quiet hours ([reminders] quiet_hours) until she changes it (sound/volume.py).
    night_volume_db: float = NIGHT_VOLUME_DB


@dataclass(frozen=True)
class SpeechSettings:
    """How the coach speaks. The voice is an espeak-ng voice with engine "espeak" (empty: the language pack's own),
    a Piper voice with engine "piper" (empty: voices.DEFAULT_VOICE); a pack file, if given, is spoken instead of the
    built-in pack for the language (its [[commands]] are listened for, too)."""

    rate: int = DEFAULT_RATE_WPM
    voice: str = ""
    engine: str = voices.ESPEAK
    pack: Path | None = None
    # How the seconds of a hold are counted: spoken numbers, or soft ticks for a room where someone sleeps.
    counts: str = WORDS


@dataclass(frozen=True)
class ListenSettings:
    """Voice control. No model means the one `voicecoach model fetch` installs for the language."""

    model: Path | None = None
    commands: Path | None = None
    sensitivity: float = 0.5
    voice_required: bool = False


@dataclass(frozen=True)
class Config:
    """The effective configuration, with where each value came from."""

    language: str
    state_dir: Path
    audio: AudioSettings
    speech: SpeechSettings
    listen: ListenSettings
    rules: Rules
    reminders: ReminderSettings
    programme: tuple[Exercise, ...]
    # The files read, lowest precedence first, as labels ("--config PATH" for the explicit one).
    files: tuple[str, ...]
    # Dotted key -> value and dotted key -> origin ("default", a file, a flag or the environment).
    values: Mapping[str, object]
    origins: Mapping[str, str]

    def exercise(self, name: str) -> Exercise:
        """The exercise named in English or Swedish, with this configuration's overrides."""
        key = find_exercise(name).key
        return next(e for e in self.programme if e.key == key)


_SPECS: dict[str, Check] = {
    "language": check.language,
    "state_dir": check.path(optional=False),
    "audio.input_device": check.device,
    "audio.output_device": check.device,
    "audio.volume": check.number(0.0, 1.0),
    "audio.night_volume_db": check.number(VOLUME_MIN_DB, VOLUME_MAX_DB),
    "speech.rate": check.whole(*RATE_WPM, "words a minute"),
    "speech.voice": check.voice,
    "speech.engine": check.engine,
    "speech.pack": check.path(optional=True),
    "speech.counts": check.one_of(COUNTS),
    "listen.model": check.path(optional=True),
    "listen.commands": check.path(optional=True),
    "listen.sensitivity": check.number(0.0, 1.0),
    "listen.voice_required": check.flag,
    **{
        f"progression.{name}": check.whole(low, high, unit, OWN_SET if name == "in_a_row" else "")
        for name, (low, high, unit) in RULE_BOUNDS.items()
    },
    "reminders.enabled": check.flag,
    "reminders.times": check.clock_times,
    "reminders.quiet_hours": check.quiet_hours,
}
_SECTIONS = ("audio", "speech", "listen", "progression", "reminders")


def _defaults() -> dict[str, object]:
    values: dict[str, object] = {"language": "sv", "state_dir": paths.state_dir()}
    for section, settings in (("audio", AudioSettings()), ("speech", SpeechSettings()), ("listen", ListenSettings())):
        values.update({f"{section}.{k}": v for k, v in vars(settings).items()})
    values.update({f"progression.{k}": 0 if v is None else v for k, v in asdict(DEFAULT_RULES).items()})
    reminders = ReminderSettings()
    values["reminders.enabled"] = reminders.enabled
    values["reminders.times"] = [format_clock(t) for t in reminders.times]
    values["reminders.quiet_hours"] = format_quiet_hours(reminders.quiet)
    for exercise in EXERCISES:
        for name, (field, _unit) in PROGRAMME_FIELDS.items():
            values[f"programme.{exercise.key}.{name}"] = getattr(exercise, field)
    return values


# -- layers ----------------------------------------------------------------------------------------------------------


def _unknown(where: str, key: str, allowed: list[str]) -> ConfigError:
    # Compare the last parts only: the shared "programme.strength." prefix would make anything look close.
    names = {name.rsplit(".", 1)[-1]: name for name in allowed}
    close = difflib.get_close_matches(key.rsplit(".", 1)[-1], names, n=1)
    hint = f" (did you mean {names[close[0]]}?)" if close else ""
    return ConfigError(f"{where}: unknown key {key}{hint}; the keys allowed here are {', '.join(allowed)}")


def _check(where: str, key: str, value: object, base: Path) -> object:
    try:
        return _SPECS[key](value, base)
    except Invalid as exc:
        raise ConfigError(f"{where}: {key} = {shown(value)} is not allowed; use {exc}") from None


def _programme(where: str, table: object) -> dict[str, object]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: programme must be a table of exercises, e.g. [programme.strength]")
    values: dict[str, object] = {}
    seen: dict[str, str] = {}
    for name, entry in table.items():
        try:
            exercise = find_exercise(name)
        except ProgrammeError as exc:
            raise ConfigError(f"{where}: programme.{name} is not an exercise; {exc}") from None
        if exercise.key in seen:
            raise ConfigError(
                f"{where}: programme.{seen[exercise.key]} and programme.{name} are the same exercise; keep one of them"
            )
        seen[exercise.key] = name
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: programme.{name} must be a table with keys {', '.join(PROGRAMME_FIELDS)}")
        for field, value in entry.items():
            key = f"programme.{name}.{field}"
            if field not in PROGRAMME_FIELDS:
                raise _unknown(where, key, [f"programme.{name}.{f}" for f in PROGRAMME_FIELDS])
            attr, unit = PROGRAMME_FIELDS[field]
            low, high = getattr(BOUNDS, attr)
            allowed = f"a whole number of {unit} from {low} to {high}"
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{where}: {key} = {shown(value)} is not allowed; use {allowed}")
            try:
                # The programme owns the bounds; asking it keeps one source of truth.
                with_overrides(exercise, **{attr: value})
            except ProgrammeError:
                raise ConfigError(f"{where}: {key} = {shown(value)} is not allowed; use {allowed}") from None
            values[f"programme.{exercise.key}.{field}"] = value
    return values


def _layer(where: str, data: Mapping[str, object], base: Path) -> dict[str, object]:
    """Validate one file's table and flatten it to dotted keys."""
    top = [k for k in _SPECS if "." not in k]
    allowed = [*top, *(f"[{s}]" for s in _SECTIONS), "[programme]"]
    values: dict[str, object] = {}
    for key, value in data.items():
        if key == "programme":
            values.update(_programme(where, value))
        elif key in _SECTIONS:
            if not isinstance(value, dict):
                keys = ", ".join(k.split(".")[1] for k in _SPECS if k.startswith(f"{key}."))
                raise ConfigError(f"{where}: {key} must be a table ([{key}]) with keys {keys}")
            for name, item in value.items():
                dotted = f"{key}.{name}"
                if dotted not in _SPECS:
                    raise _unknown(where, dotted, [k for k in _SPECS if k.startswith(f"{key}.")])
                values[dotted] = _check(where, dotted, item, base)
        elif key in top:
            values[key] = _check(where, key, value, base)
        else:
            raise _unknown(where, key, allowed)
    return values


def _read_text(path: Path, label: str) -> str:
    """The file's text. Opened without blocking, so a FIFO is refused rather than waited on; a device such as
    /dev/zero is refused before it is read, and a regular file is read no further than MAX_BYTES."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise ConfigError(f"{label} is a directory; the configuration must be a TOML file")
        if not stat.S_ISREG(mode):
            raise ConfigError(f"{label} is not a regular file; the configuration must be a TOML file")
        data = b""
        while len(data) <= MAX_BYTES and (chunk := os.read(fd, MAX_BYTES + 1 - len(data))):
            data += chunk
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{label} is larger than {MAX_BYTES >> 20} MiB; a configuration is a few lines of TOML")
    return data.decode("utf-8")


def _read(path: Path, label: str, required: bool) -> dict[str, object] | None:
    """One file's validated values; None for an optional file that is not there."""
    try:
        text = _read_text(path, label)
    except (FileNotFoundError, NotADirectoryError):
        if not required:
            return None
        raise ConfigError(f"--config {label}: the file does not exist; check the path") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{label} is not UTF-8 text; save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {label}: {exc.strerror}; check its permissions") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{label} is not valid TOML ({exc}); fix the syntax") from None
    except RecursionError:
        # tomllib recurses once per level; no key here takes more than a list of plain values.
        raise ConfigError(f"{label} has arrays or tables nested too deeply to read; fix the syntax") from None
    return _layer(label, data, path.parent.absolute())


def user_file() -> Path | None:
    """$XDG_CONFIG_HOME/voicecoach/config.toml, else ~/.config/voicecoach/config.toml; None without a home."""
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg:
        return Path(xdg) / "voicecoach" / "config.toml"
    try:
        return Path.home() / ".config" / "voicecoach" / "config.toml"
    except (RuntimeError, KeyError):
        # A service user with no home directory and no $HOME has no user file.
        return None


def load(explicit: Path | None = None, overrides: Mapping[str, object] | None = None) -> Config:
    """The effective configuration; overrides maps dotted keys (see FLAGS) to command-line values, None = not given."""
    layers: list[tuple[str, dict[str, object]]] = [(DEFAULT, _defaults())]
    files: list[str] = []
    # The default locations are optional; a file that is there but cannot be used is still an error.
    candidates = [(path, str(path), False) for path in (SYSTEM_FILE, user_file()) if path is not None]
    if explicit is not None:
        candidates.append((explicit, str(explicit), True))
    for path, name, required in candidates:
        layer = _read(path, name, required)
        if layer is not None:
            label = f"--config {name}" if required else name
            layers.append((label, layer))
            files.append(label)
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in _SPECS:
            raise ValueError(f"{key!r} is not a configuration key")
        flag = FLAGS.get(key, "command line")
        layers.append((flag, {key: _check(flag, key, value, Path.cwd())}))
    state = os.environ.get(paths.STATE_ENV)
    if state:
        layers.append((ENVIRONMENT, {"state_dir": Path(state)}))

    values: dict[str, object] = {}
    origins: dict[str, str] = {}
    for origin, layer in layers:
        values.update(layer)
        origins.update(dict.fromkeys(layer, origin))
    return _build(values, origins, tuple(files))


def _build(values: dict[str, Any], origins: dict[str, str], files: tuple[str, ...]) -> Config:
    # Each value was checked on its own (config_values) before it gets here: their types are known by then.
    def section(name: str) -> dict[str, Any]:
        return {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith(f"{name}.") and k.count(".") == 1}

    programme = tuple(
        with_overrides(
            exercise,
            **{field: values[f"programme.{exercise.key}.{name}"] for name, (field, _u) in PROGRAMME_FIELDS.items()},
        )
        for exercise in EXERCISES
    )
    rules = section("progression")
    in_a_row = rules.pop("in_a_row")
    _check_voice(values, origins)
    return Config(
        language=str(values["language"]),
        state_dir=Path(str(values["state_dir"])),
        audio=AudioSettings(**section("audio")),
        speech=SpeechSettings(**section("speech")),
        listen=ListenSettings(**section("listen")),
        rules=Rules(**rules, in_a_row=in_a_row or None),
        reminders=_reminders(values, origins),
        programme=programme,
        files=files,
        values=values,
        origins=origins,
    )


def _check_voice(values: Mapping[str, object], origins: Mapping[str, str]) -> None:
    """speech.voice against speech.engine, which may come from another file: a Piper voice must be one voicecoach can
    fetch or one installed, and a Piper voice with engine "espeak" would be handed to espeak-ng."""
    voice, engine = str(values["speech.voice"]), values["speech.engine"]

    def where(key: str) -> str:
        return origins[key].removeprefix("--config ")

    setting = f"{where('speech.voice')}: speech.voice = {shown(voice)}"
    if engine == voices.ESPEAK and voice in voices.CATALOGUE:
        raise ConfigError(
            f"{setting} is a Piper voice, but speech.engine = {shown(engine)} ({where('speech.engine')});"
            ' set engine = "piper" in [speech], or choose an espeak-ng voice'
        )
    if engine != voices.PIPER or not voice or voice in voices.CATALOGUE:
        return
    voices_dir = paths.voices_dir(Path(str(values["state_dir"])))
    try:
        there = voices.is_voice(voices_dir, voice)
    except OSError:
        there = True  # this process cannot look into the state directory; the daemon, which can, falls back
    if not there:
        raise ConfigError(
            f"{setting} is neither a Piper voice voicecoach can fetch ({', '.join(voices.CATALOGUE)}) nor one"
            f" installed in {voices_dir}; use one of those, or put {voice}.onnx and {voice}.onnx.json in"
            f" {voices_dir / voice}"
        )


def _reminders(values: Mapping[str, object], origins: Mapping[str, str]) -> ReminderSettings:
    """The [reminders] keys together; they may come from different files, so these checks run on the merged values."""
    times = values["reminders.times"]
    quiet_text = values["reminders.quiet_hours"]
    assert isinstance(times, list) and isinstance(quiet_text, str)
    settings = ReminderSettings(
        enabled=values["reminders.enabled"] is True,
        times=tuple(parse_clock(t) for t in times),
        quiet=parse_quiet_hours(quiet_text),
    )

    def where(key: str) -> str:
        return origins[key].removeprefix("--config ")

    quiet_from = f"reminders.quiet_hours = {shown(quiet_text)} ({where('reminders.quiet_hours')})"
    for text, clock in zip(times, settings.times, strict=True):
        if quiet_at(settings.quiet, clock):
            raise ConfigError(
                f"{where('reminders.times')}: reminders.times has {shown(text)}, which is in the quiet hours,"
                f" {quiet_from}; use times outside the quiet hours, or change reminders.quiet_hours"
            )
    if settings.enabled and not settings.times:
        raise ConfigError(
            f'{where("reminders.enabled")}: reminders.enabled = true needs reminders.times, e.g. times = ["18:00"];'
            " add the times of day to be reminded, or set enabled = false"
        )
    return settings
