"""Rasa-side extensions loaded by the Rasa server (custom input channels)."""
