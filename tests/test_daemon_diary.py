"""The real daemon's leak diary through `ctl`: recorded between sets and said so, taken back, refused in a set, and
read back by `voicecoach diary` from the journal the daemon wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from daemon_harness import Daemon, DaemonError
from pulse import PulseServer
from test_daemon import FIRST_REP_S, WATCHDOG_S

from voicecoach.cli.main import main


@pytest.mark.audio
def test_ctl_records_a_leak_and_a_pad_change_and_takes_the_last_back(
    pulse: PulseServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--model", str(tmp_path / "no-model")]
    with Daemon(tmp_path / "daemon", args, pulse.environ(), WATCHDOG_S) as d:
        d.wait_ready()
        d.ctl("leak")
        d.ctl("pad")
        d.ctl("undo")
        d.wait_log(lambda line: "diary: diary_undo" in line, what="the undo logged")
        d.ctl("start", "speed")
        d.wait_status(lambda s: s["state"] == "session", timeout=FIRST_REP_S, what="the set")
        with pytest.raises(DaemonError, match="leak means nothing now"):
            d.ctl("leak")
        d.ctl("stop")
    monkeypatch.setenv("VOICECOACH_STATE_DIR", str(d.state_dir))
    capsys.readouterr()
    assert main(["diary", "--json"]) == 0
    assert [json.loads(line)["entry"] for line in capsys.readouterr().out.splitlines()] == ["leak"]
    assert "Traceback" not in d.log()
