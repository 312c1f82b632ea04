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
from dataclasses import dataclass

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


# How many free candidates (in id order) the store returns for the policy to choose from:
# enough to steer away from first-fit's traps, few enough that ranking stays a few index
# probes (bench/pool.py measured 8 as good as ranking every free number).
CANDIDATES = 8


@dataclass(frozen=True, slots=True)
class Candidate:
    """A free number and the weight of the party claims it already holds."""

    number_id: int
    weight: int


def claim_weight(live_claims: int) -> int:
    """The weight a new party claim carries: how many numbers the party then holds.

    A busy party's claims weigh more: a number it holds is one its future sessions
    cannot take, so other sessions should prefer exactly that number.
    """
    return live_claims + 1


def rank_numbers(candidates: Sequence[Candidate], sticky: int | None) -> list[int]:
    """Free candidate number ids, best first.

    Sticky first: the number this pair had before, when it is free, so a party who
    saved the number keeps reaching the same person. Then the heaviest number: the one
    whose live claims belong to the busiest parties (the sum of ``claim_weight``). A
    session that takes a number the busy parties already hold uses up nothing they
    could still use, which keeps the most numbers open for the parties most likely to
    need one; first-fit instead takes the lowest free number even when that is the last
    one a busy party had free (bench/pool.py's "anti-first-fit" trace: N numbers instead
    of 2N - 1). Ties go to the lowest id, so an idle pool fills like first-fit.
    """
    ranked = sorted(candidates, key=lambda c: (c.number_id != sticky, -c.weight, c.number_id))
    return [c.number_id for c in ranked]
