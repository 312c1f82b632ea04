"""Every message Veil's Plivo-compatible API answers with, in one place.

The documented ones are Plivo's own wording (seed 002 and plivo-wire.md section 9); the
rest follow the same pattern so that a client parsing ``error`` sees one style. Success
messages carry no trailing period, as in Plivo's real bodies.
"""

from __future__ import annotations

SESSION_CREATED = "Session created"
SESSION_UPDATED = "Session updated"
SESSION_EXPIRED = "Session expired"

# Documented by Plivo.
ALREADY_EXPIRED = "Session already expired."
POOL_EXHAUSTED = "Number pool exhausted or not available."
# Veil's own (Plivo always has media): a node without a media engine refuses what needs one.
MEDIA_OFF = (
    "Invalid parameter. record, PIN authentication and play URLs need media, which is off "
    "on this server (VEIL_MEDIA=off or rtpengine not installed)."
)
RECORD_FILE_FORMAT = "Invalid parameter. record_file_format allowed values are mp3 or wav."
INTERNAL_ERROR = "Internal server error."

# Veil's, in Plivo's style.
SESSION_NOT_FOUND = "Session not found."
RECORDING_NOT_FOUND = "Recording not found."
SAME_PARTY = "Invalid parameter. first_party and second_party must be different."
PINS_EQUAL = "Invalid parameter. first_party_pin and second_party_pin must be different."
ONE_PARTY_MISSING = "Mandatory parameter missing. first_party or second_party must be present."
PIN_IN_USE = (
    "Invalid parameter. the PIN is already used by another active session on this virtual number."
)
INVALID_BODY = "Invalid request body. Send a JSON object with Content-Type: application/json."
AUTH_FAILED = "Authentication failed. Check your auth_id and auth_token."
AUTH_ID_MISMATCH = "The auth_id in the URL is not the authenticated account."
ACCOUNT_NOT_FOUND = "Account not found."
SUBACCOUNT_CANNOT_CREATE = "A subaccount cannot create subaccounts."
SUBACCOUNT_NOT_FOUND = "Invalid parameter. subaccount is not a subaccount of this account."
NUMBER_NOT_FOUND = "Number not found."
NUMBER_IN_USE = "Number is used by active sessions and cannot be removed."
RESOURCE_NOT_FOUND = "Resource not found."
LIMIT_RANGE = "Invalid parameter. limit should be between 1 and 20."
OFFSET_NEGATIVE = "Invalid parameter. offset should not be negative."
METHOD_NOT_ALLOWED = "HTTP method not allowed for this resource."


def invalid_phone(name: str) -> str:
    return f"Invalid parameter. {name} is not a valid phone number."


def missing(name: str) -> str:
    return f"Mandatory parameter missing. {name} must be present."


def out_of_range(name: str) -> str:
    return f"Invalid parameter. {name} is outside the allowed range."


def not_boolean(name: str) -> str:
    return f"Invalid parameter. {name} allowed values are true or false."


def not_integer(name: str) -> str:
    return f"Invalid parameter. {name} should be an integer."


def not_digits(name: str) -> str:
    return f"Invalid parameter. {name} should contain only digits."


def not_method(name: str) -> str:
    return f"Invalid parameter. {name} allowed values are GET or POST."


def not_url(name: str) -> str:
    return f"Invalid parameter. {name} should be a valid URL."


def url_too_long(name: str) -> str:
    return f"Invalid parameter. {name} should be under 1000 characters."


def not_audio_url(name: str) -> str:
    return f"Invalid parameter. {name} should be the URL of an .mp3 or .wav file."


def not_pin(name: str) -> str:
    return f"Invalid parameter. {name} should be 4 to 15 digits."


def not_text(name: str) -> str:
    return f"Invalid parameter. {name} should be a string."


def immutable(name: str) -> str:
    return f"Invalid parameter. {name} cannot be updated for an active session."


def party_busy(name: str) -> str:
    return f"Invalid parameter. {name} already has an active session on this virtual number."


def not_one_of(name: str, allowed: str) -> str:
    return f"Invalid parameter. {name} allowed values are {allowed}."


def bad_filter_time(name: str) -> str:
    return f"Invalid parameter. {name} should be a time as YYYY-MM-DD HH:MM[:ss[.uuuuuu]]."
