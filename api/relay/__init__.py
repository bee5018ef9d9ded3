"""The bot path: fan messages relayed to Rasa, one turn at a time per conversation."""
