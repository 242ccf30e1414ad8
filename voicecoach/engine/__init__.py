"""The session engine: the programme's numbers, the language packs, and the pure timeline of a set, given the time
and never reading a clock. Imports nothing of voicecoach above errors and intents."""
