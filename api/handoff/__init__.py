"""Handoff: a thread leaves the bot for a named person (texts, the public handoff object,
first-response timers and alerts). See docs/handoff.md."""
