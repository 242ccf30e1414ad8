"""Sound out: the clip cache that renders each phrase once, the mixer that places clips on the audio clock, and the
one module that talks to PortAudio."""
