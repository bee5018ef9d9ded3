"""Floods are absorbed: rate limits (``limiter``), the client address (``address``) and urgent
alerts grouped per address (``alerts``). Submodules are imported where used (settings import
``address`` while they load)."""
