"""Local time on a daylight-saving change day, through the clock the daemon really uses (issue 11).

Each test runs voicecoach in a process of its own with TZ=Europe/Stockholm. Only "now" is faked, and only as an
instant: time.time() and datetime.now() are moved to a chosen UTC moment by a sitecustomize module on PYTHONPATH,
and go on from there. Turning that instant into local time is left to the real zone rules, which are under test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from daemon_harness import Daemon
from pulse import PulseServer

ZONE = "Europe/Stockholm"
# 2026-03-29: in Stockholm the clocks go forward at 02:00 CET (01:00 UTC) to 03:00 CEST.
BEFORE_THE_CHANGE = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # 01:30+01:00
AFTER_THE_CHANGE = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 03:30+02:00
REMINDER = '[reminders]\nenabled = true\ntimes = ["08:00"]\nquiet_hours = ""\n'

FAKE_NOW = """\
import datetime as _datetime
import os
import time as _time

# The process's clock, moved to VOICECOACH_TEST_NOW (a POSIX timestamp) and running on from there.
_shift = float(os.environ["VOICECOACH_TEST_NOW"]) - _time.time()
_real_time = _time.time
_time.time = lambda: _real_time() + _shift


class _Datetime(_datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return cls.fromtimestamp(_time.time(), tz)


_datetime.datetime = _Datetime
"""


def faked_env(tmp_path: Path, instant: datetime, base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment whose Python processes start at instant, in Stockholm, with a clock systemd calls synchronised."""
    fake = tmp_path / "fake-now"
    fake.mkdir(exist_ok=True)
    (fake / "sitecustomize.py").write_text(FAKE_NOW, encoding="utf-8")
    tools = tmp_path / "bin"
    tools.mkdir(exist_ok=True)
    (tools / "timedatectl").write_text("#!/bin/sh\necho yes\n")
    (tools / "timedatectl").chmod(0o755)
    env = dict(os.environ if base is None else base)
    python_path = [str(fake), *filter(None, [env.get("PYTHONPATH")])]
    return {
        **env,
        "TZ": ZONE,
        "PYTHONPATH": os.pathsep.join(python_path),
        "VOICECOACH_TEST_NOW": str(instant.timestamp()),
        "PATH": f"{tools}{os.pathsep}{env['PATH']}",
    }


def run_python(code: str, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_local_now_has_the_offset_of_each_side_of_the_change(tmp_path: Path) -> None:
    code = "from voicecoach.training.clock import local_now; print(local_now().isoformat(timespec='minutes'))"
    assert run_python(code, faked_env(tmp_path, BEFORE_THE_CHANGE)) == "2026-03-29T01:30+01:00"
    assert run_python(code, faked_env(tmp_path, AFTER_THE_CHANGE)) == "2026-03-29T03:30+02:00"


def test_the_conversations_default_clock_puts_08_00_after_the_change_at_08_00_summer_time(tmp_path: Path) -> None:
    """The daemon builds its Conversation without a clock: this is the default it gets."""
    code = """
from datetime import time
from voicecoach.training.conversation import Conversation
from voicecoach.training.progress_texts import load_phrases
from voicecoach.training.progression import DEFAULT_RULES
from voicecoach.training.reminders import ReminderSettings

settings = ReminderSettings(enabled=True, times=(time(8, 0),), quiet=None)
talk = Conversation(None, load_phrases("sv"), DEFAULT_RULES, settings, lambda _t: 0.0, lambda _k: None)
print(talk.reminder_due.isoformat(timespec="minutes"))
"""
    # With a fixed offset taken at 01:30+01:00, 08:00 came out as 08:00+01:00: 09:00 summer time.
    assert run_python(code, faked_env(tmp_path, BEFORE_THE_CHANGE)) == "2026-03-29T08:00+02:00"


@pytest.mark.audio
def test_the_daemon_says_its_reminder_at_08_00_summer_time_on_the_change_day(
    pulse: PulseServer, tmp_path: Path
) -> None:
    """The real `voicecoach run`, started at 01:30 on the night the clocks go forward."""
    settings = tmp_path / "config.toml"
    settings.write_text(REMINDER, encoding="utf-8")
    env = faked_env(tmp_path, BEFORE_THE_CHANGE, pulse.environ())
    root = tmp_path / "daemon"
    with Daemon(root, ["--config", str(settings), "--model", str(root / "no-model")], env) as d:
        d.wait_ready()
        assert d.status()["reminders"] == "next at 2026-03-29 08:00+02:00"
