"""The OpenAPI document (`/openapi.json`): every operation's answers, bodies and meaning."""
