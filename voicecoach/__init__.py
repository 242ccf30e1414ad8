"""voicecoach: a hands-free, offline pelvic-floor training coach."""
