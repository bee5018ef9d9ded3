"""Fan satisfaction (CSAT): the survey after a person's conversation, and its answers."""
