"""The review queue: fan messages the bot missed, grouped, annotated by operators."""
