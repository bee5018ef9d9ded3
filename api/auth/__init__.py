"""Staff authentication: argon2 password hashes and signed bearer tokens with an expiry."""
