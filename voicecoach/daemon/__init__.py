"""The always-on service (`voicecoach run`): its event loop, the control socket, systemd's notify and watchdog, and
keeping the audio stream and the sound server in sight."""
