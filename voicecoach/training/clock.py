"""Local wall-clock time, the one definition of it: reminders, calendar days and the journal's local dates.

The zone is a ZoneInfo, with its daylight-saving rules, never a fixed offset. `datetime.now().astimezone()` gives
today's offset only, and a wall time combined with it lands on the wrong hour once the clocks have changed: asked at
01:30 on 2026-03-29 in Stockholm, 08:00 that morning came out as 08:00+01:00, which is 09:00 summer time.
"""

from __future__ import annotations

import os
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def local_zone() -> tzinfo:
    """The system's time zone ($TZ, else /etc/localtime) with its daylight-saving rules, so that a day is a local
    day and 08:00 is 08:00 on both sides of a change. Read on every call: `timedatectl set-timezone` takes effect
    in a running daemon, for the price of reading a 2 KB file every few seconds."""
    name = os.environ.get("TZ", "").lstrip(":")
    try:
        if name:
            return ZoneInfo(name)
        with open("/etc/localtime", "rb") as localtime:
            return ZoneInfo.from_file(localtime)
    except (OSError, ValueError, ZoneInfoNotFoundError):
        # A POSIX TZ string ("CET-1CEST,M3.5.0,M10.5.0/3") or no zone database: today's offset is the best there is.
        zone = datetime.now().astimezone().tzinfo
        assert zone is not None
        return zone


def local_now() -> datetime:
    """Now, as an aware local time in local_zone()."""
    return datetime.now(local_zone())
