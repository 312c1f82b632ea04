"""Virtual-number allocation rules.

The rule that makes masking work: a caller dialling a virtual number must identify
exactly one session. So a session *claims*, on its virtual number, one key per party
and, when PIN authentication is on, one key per PIN. Two live claims of the same key
on the same number cannot exist: the store enforces it with a unique key, which makes
allocation atomic under concurrency. A claim lives until the session's expiry plus its
cool-off period (``Session.busy_until``).

Which free number to take is the policy below; the store hands it the candidates that
already satisfy every hard constraint (scope, geomatch, reservation, claims).
"""

from __future__ import annotations

from collections.abc import Sequence

from veil.domain.session_params import SessionSettings


def party_key(e164: str) -> str:
    """The claim key of a party's real number."""
    return "p:" + e164


def pin_key(pin: str) -> str:
    """The claim key of a PIN."""
    return "pin:" + pin


def pair_key(first: str, second: str) -> str:
    """The same key for (a, b) and (b, a); "" until a single-party session has both."""
    if not first or not second:
        return ""
    return "|".join(sorted((first, second)))


def claimed_pins(settings: SessionSettings) -> list[str]:
    """The PINs a session claims: both, when it uses PIN authentication."""
    if not settings.is_pin_authentication_required:
        return []
    return [settings.first_party_pin, settings.second_party_pin]


def claim_keys(parties: Sequence[str], pins: Sequence[str]) -> list[str]:
    """All keys a session claims on its number; empty parties and PINs are skipped."""
    return [party_key(p) for p in parties if p] + [pin_key(p) for p in pins if p]


# How many free candidates the store returns for the policy to choose from.
CANDIDATES = 8


def rank_numbers(candidates: Sequence[int], sticky: int | None) -> list[int]:
    """Free candidate number ids (in the store's order), best first.

    Sticky first: the number this pair had before, when it is free, so a party who
    saved the number keeps reaching the same person.
    """
    ranked = list(candidates)
    if sticky is not None and sticky in ranked:
        ranked.remove(sticky)
        ranked.insert(0, sticky)
    return ranked
