"""Who is calling: API keys, JWT access tokens (outside issuers' and our own), and the
SMART token endpoint."""
