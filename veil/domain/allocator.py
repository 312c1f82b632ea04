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

from collections.abc import Iterable, Sequence
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
# enough to steer away from first-fit's traps (bench/pool.py found 4 to 8 as good as
# ranking every free number), few enough that ranking them reads a few dozen claims.
CANDIDATES = 8


@dataclass(frozen=True, slots=True)
class Candidate:
    """A free number, and how much it is used during the new session's life."""

    number_id: int
    load: int


# A number's load counts at most this many of its live claims, those that hold it
# longest. Unbounded, the load of a number that holds every session of parties who never
# meet (all of a pool's traffic, as first-fit would stack it) cost a row per session it
# held: creates slowed linearly with the pool's live sessions. 192 and up rank every
# number as the full sum did on every trace and seed bench/pool.py replays.
LOAD_CLAIMS = 256


def overlap_load(ends: Iterable[int], now: int, horizon: int, *, most: int = LOAD_CLAIMS) -> int:
    """How much a number is used while a new session would hold it (from ``now`` until
    ``horizon``, its expiry plus cool-off): the sum, over the ``most`` live claims on the
    number that end last (their ``ends``), of the time each still holds it within that
    span. All in whole seconds since the epoch, as the store sums it in SQL
    (veil/store/sessions.py)."""
    live = sorted((end for end in ends if end > now), reverse=True)[:most]
    return sum(min(end, horizon) - now for end in live)


def rank_numbers(candidates: Sequence[Candidate], sticky: int | None) -> list[int]:
    """Free candidate number ids, best first.

    Sticky first: the number this pair had before, when it is free, so a party who
    saved the number keeps reaching the same person. Then the most loaded number for the
    new session's life (``overlap_load``): parties that hold a number cannot take it for
    another session anyway, so stacking the new session where claims already sit, and
    for as long as it will sit there, leaves the lightly used numbers open for the
    parties that will need one. First-fit gets that packing only from its fixed order
    (the low numbers are the busiest), which an unlucky order of sessions defeats: on
    bench/pool.py's anti-first-fit trace it needs 2N - 1 numbers and this needs N.
    Ties go to the lowest id, so an idle pool fills as first-fit would.

    The store sorts by the same three keys in SQL, in the statement that inserts the
    session (``veil.store.sessions.insert_on_best_number``); tests/service/
    test_best_number.py and test_pool_replay_matches.py check that both choose alike.
    """
    ranked = sorted(candidates, key=lambda c: (c.number_id != sticky, -c.load, c.number_id))
    return [c.number_id for c in ranked]
