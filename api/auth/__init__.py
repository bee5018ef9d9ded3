"""Staff authentication: argon2 password hashes (in their own threads), signed bearer tokens
with an expiry that sign-out and a new password revoke, and sign-in lock-out."""
