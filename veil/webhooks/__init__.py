"""Webhooks: callbacks Veil sends to customer URLs, signed as Plivo signs its own."""
