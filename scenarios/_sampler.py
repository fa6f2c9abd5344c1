"""Sampling scenarios from a pack, one independent random stream per dialogue.

Scenario `i` of a run depends only on the run seed and `i`, never on how many dialogues are sampled or in
which order they run: a resumed run or a larger run reproduces the same first dialogues exactly.
"""

from __future__ import annotations

import random

from ._models import Goal, Pack, Scenario
from ._values import generate_value


def dialogue_rng(seed: int, index: int, stream: str) -> random.Random:
    """The random stream `stream` of dialogue `index` in a run seeded with `seed`.

    String seeds are hashed with SHA-512 by `random.Random`, so streams are stable across processes and
    Python versions, unlike `hash()`.
    """
    return random.Random(f"botdrill:{seed}:{index}:{stream}")


def sample_scenario(pack: Pack, seed: int, index: int, *, critical_share: float = 0.5) -> Scenario:
    """Scenario `index` of a run seeded with `seed`.

    Args:
        pack: the pack to draw from.
        seed: the run seed.
        index: position in the run.
        critical_share: share of dialogues drawn from the critical intents (uniformly among them) rather
            than from the traffic weights, so rare intents are drilled however rare they are in traffic.
    """
    rng = dialogue_rng(seed, index, "scenario")
    critical = [i for i in pack.intents if i.critical]
    common = [i for i in pack.intents if not i.critical]
    if critical and (not common or rng.random() < critical_share):
        intent = rng.choice(critical)
    else:
        intent = rng.choices(common, weights=[i.weight for i in common])[0]
    persona = rng.choices(pack.personas, weights=[p.weight for p in pack.personas])[0]
    slots = {name: generate_value(pack.slot(name), pack, rng) for name in intent.slots}
    goal = Goal(
        intent=intent.name,
        slots=slots,
        escalation=intent.escalation.expected,
        escalation_within=intent.escalation.within_turns,
        critical=intent.critical,
    )
    return Scenario(id=f"s{index:06d}", index=index, persona=persona, goal=goal, seed=rng.getrandbits(63))


def sample_scenarios(pack: Pack, n: int, seed: int, *, critical_share: float = 0.5) -> list[Scenario]:
    """The first `n` scenarios of a run seeded with `seed` (see `sample_scenario`)."""
    return [sample_scenario(pack, seed, i, critical_share=critical_share) for i in range(n)]
