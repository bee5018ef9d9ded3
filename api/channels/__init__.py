"""The fan-facing channels: Rasa-compatible REST, web chat (socket.io) and Messenger."""
