"""The staff inbox: browser sessions, notes, flags, canned responses, the live event stream."""
