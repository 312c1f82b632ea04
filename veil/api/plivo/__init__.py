"""The Plivo-compatible API: /v1/Account/{auth_id}/..."""
