"""Sampling scenarios from a pack: stratified quotas, one independent random stream per dialogue.

What a run simulates is decided in two steps. First a *plan* assigns each index an intent, a complexity
and a persona, stratified level by level: intents to their quota shares (critical intents share
`critical_share` equally, however rare they are in traffic; the others follow their traffic weights), then
complexities and personas (by weight) within each intent, and, for a turning or two-intent dialogue, the
other intent in turn among the everyday ones, so a run walks as many domain-graph edges as it can. Each is a
systematic sample with a seeded random phase per cell: cell `c` of share `w` takes its `k`-th item at
"time" `(k + u_c) / w`, and items are handed out in time order. Every prefix of the sequence then stays
within about one item of its quota in every cell (at most 1.25 in every prefix up to 1,000 scenarios, over
30 seeds of the banking pack), so a run of 24 dialogues drills each of the six critical intents twice, and a
resumed or larger run reproduces the first dialogues exactly. The random phases keep small cells fair: the
first persona of every intent is not always the heaviest one.

Then scenario `i` draws everything else (slot values, which everyday intent a `turn_into` dialogue starts
with, which slot a `correction` gets wrong) from its own stream, which depends only on the run seed and `i`.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ._errors import BotdrillError
from ._models import Complexity, Goal, IntentSpec, Pack, Persona, Scenario
from ._values import generate_value

_K = TypeVar("_K", bound=str)

DEFAULT_COMPLEXITY: dict[Complexity, float] = {
    Complexity.SIMPLE: 0.7,
    Complexity.TURN_INTO: 0.1,
    Complexity.TWO_INTENTS: 0.1,
    Complexity.CORRECTION: 0.1,
}


class QuotaError(BotdrillError):
    """A quota specification cannot be used (unknown name, bad share)."""

    code = "quota_invalid"


class Quotas(BaseModel):
    """How a run's dialogues are spread over intents and complexities (personas follow their weights).

    Example:
        >>> Quotas.parse_complexity("simple:3,turn_into:1")
        {<Complexity.SIMPLE: 'simple'>: 0.75, <Complexity.TURN_INTO: 'turn_into'>: 0.25}
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    critical_share: float = Field(default=0.5, ge=0, le=1)
    """Share of dialogues for the critical intents, split equally among them."""
    intents: dict[str, float] = Field(default_factory=dict)
    """Explicit shares for named intents (summing to at most 1); the rest is shared as usual."""
    complexity: dict[Complexity, float] = Field(default_factory=lambda: dict(DEFAULT_COMPLEXITY))
    """Relative shares of the complexities; one an intent cannot take is given to the others."""

    @field_validator("intents")
    @classmethod
    def _check_intents(cls, value: dict[str, float]) -> dict[str, float]:
        if any(v < 0 for v in value.values()):
            raise ValueError("intent shares must not be negative")
        if sum(value.values()) > 1 + 1e-9:
            raise ValueError(f"intent shares sum to {sum(value.values()):g}, more than 1")
        return value

    @field_validator("complexity")
    @classmethod
    def _check_complexity(cls, value: dict[Complexity, float]) -> dict[Complexity, float]:
        if any(v < 0 for v in value.values()) or not any(v > 0 for v in value.values()):
            raise ValueError("complexity shares must be non-negative with at least one above zero")
        return value

    @staticmethod
    def parse_complexity(spec: str) -> dict[Complexity, float]:
        """`default`, `simple` (only simple dialogues) or `NAME:SHARE,...` (shares are normalised).

        Raises:
            QuotaError: an unknown complexity or a share that is not a non-negative number.
        """
        spec = spec.strip()
        if spec == "default":
            return dict(DEFAULT_COMPLEXITY)
        known = ", ".join(c.value for c in Complexity)
        out: dict[Complexity, float] = {}
        for part in (p.strip() for p in spec.split(",")):
            name, _, share = part.partition(":")
            try:
                kind = Complexity(name.strip())
            except ValueError:
                raise QuotaError(f"unknown complexity {name.strip()!r} in {spec!r}; known: {known}") from None
            try:
                weight = float(share) if share else 1.0
            except ValueError:
                raise QuotaError(f"share {share!r} of {kind.value!r} is not a number") from None
            if weight < 0 or weight != weight:
                raise QuotaError(f"share {share!r} of {kind.value!r} must be a non-negative number")
            out[kind] = out.get(kind, 0.0) + weight
        total = sum(out.values())
        if total <= 0:
            raise QuotaError(f"complexity shares in {spec!r} are all zero")
        return {k: v / total for k, v in out.items()}

    @staticmethod
    def parse_intents(spec: str) -> dict[str, float]:
        """`NAME:SHARE,...` with absolute shares (`report_fraud:0.2`); empty for none."""
        out: dict[str, float] = {}
        for part in (p.strip() for p in spec.split(",") if p.strip()):
            name, sep, share = part.partition(":")
            try:
                value = float(share)
            except ValueError:
                value = -1.0
            if not sep or not 0 <= value <= 1:
                raise QuotaError(f"intent quota {part!r} must be NAME:SHARE with a share between 0 and 1")
            out[name.strip()] = value
        return out


def dialogue_rng(seed: int, index: int, stream: str) -> random.Random:
    """The random stream `stream` of dialogue `index` in a run seeded with `seed`.

    String seeds are hashed with SHA-512 by `random.Random`, so streams are stable across processes and
    Python versions, unlike `hash()`.
    """
    return random.Random(f"botdrill:{seed}:{index}:{stream}")


@dataclass
class _Systematic:
    """An endless sequence of cells in which every prefix stays within about one item of each cell's share."""

    cells: list[str]
    shares: list[float]
    rng: random.Random
    _phases: list[float] = field(default_factory=list)
    _heap: list[tuple[float, int, int]] = field(default_factory=list)
    """(time of the cell's next item, cell position, items the cell has had so far)."""

    def __post_init__(self) -> None:
        self._phases = [self.rng.random() for _ in self.cells]
        self._heap = [(self._phases[i] / w, i, 0) for i, w in enumerate(self.shares) if w > 0]
        heapq.heapify(self._heap)

    def __next__(self) -> str:
        _, i, k = heapq.heappop(self._heap)
        heapq.heappush(self._heap, ((k + 1 + self._phases[i]) / self.shares[i], i, k + 1))
        return self.cells[i]


def _normalise(weights: Mapping[_K, float]) -> dict[_K, float]:
    total = sum(weights.values())
    return {k: v / total for k, v in weights.items()} if total > 0 else {}


class Sampler:
    """Scenarios of one run: a stratified plan (intent, complexity, persona per index) plus per-index draws.

    Example:
        >>> from botdrill.scenarios import load_pack
        >>> sampler = Sampler(load_pack("banking"), seed=3)
        >>> first = [sampler.scenario(i).goal.intent for i in range(10)]
        >>> first == [Sampler(load_pack("banking"), seed=3).scenario(i).goal.intent for i in range(10)]
        True
    """

    def __init__(self, pack: Pack, seed: int, quotas: Quotas | None = None) -> None:
        self.pack = pack
        self.seed = seed
        self.quotas = quotas or Quotas()
        unknown = sorted(set(self.quotas.intents) - {i.name for i in pack.intents})
        if unknown:
            raise QuotaError(
                f"intent quota names {', '.join(map(repr, unknown))}, not an intent of pack {pack.name!r}"
            )
        self.intent_shares = self._intent_shares()
        # Everyday intents with an opening that needs no value: what a dialogue may start with or mention
        # in passing before it turns to its goal.
        self.everyday = [i.name for i in pack.intents if not i.critical and i.plain_openings]
        self.complexity_shares = {
            name: self._complexity_shares(pack.intent(name)) for name in self.intent_shares
        }
        self._intents = _Systematic(
            list(self.intent_shares), list(self.intent_shares.values()), self._plan_rng("intent")
        )
        self._streams: dict[tuple[str, ...], _Systematic] = {}
        self._plan: list[tuple[str, Complexity, str, str | None]] = []
        self._personas_by_id: dict[str, Persona] = {p.id: p for p in pack.personas}

    # -- the plan ---------------------------------------------------------------------------------

    def _plan_rng(self, key: str) -> random.Random:
        return random.Random(f"botdrill:{self.seed}:plan:{key}")

    def _intent_shares(self) -> dict[str, float]:
        quotas, intents = self.quotas, self.pack.intents
        shares = {name: share for name, share in quotas.intents.items()}
        left = 1.0 - sum(shares.values())
        critical = [i for i in intents if i.critical and i.name not in shares]
        common = [i for i in intents if not i.critical and i.name not in shares]
        critical_part = left * quotas.critical_share if common else left
        if not critical:
            critical_part = 0.0
        for intent in critical:
            shares[intent.name] = critical_part / len(critical)
        common_total = sum(i.weight for i in common)
        for intent in common:
            shares[intent.name] = (left - critical_part) * intent.weight / common_total
        ordered = {i.name: shares[i.name] for i in intents if shares.get(i.name, 0) > 0}
        return _normalise(ordered)

    def feasible(self, intent: IntentSpec) -> list[Complexity]:
        """The complexities a dialogue of `intent` can take with this pack."""
        out = [Complexity.SIMPLE]
        others = [n for n in self.everyday if n != intent.name]
        if intent.critical and others:
            out.append(Complexity.TURN_INTO)
        if others:
            out.append(Complexity.TWO_INTENTS)
        if intent.slots:
            out.append(Complexity.CORRECTION)
        return out

    def _complexity_shares(self, intent: IntentSpec) -> dict[Complexity, float]:
        wanted = self.quotas.complexity
        feasible = self.feasible(intent)
        shares = _normalise({c: wanted.get(c, 0.0) for c in feasible})
        return shares or {Complexity.SIMPLE: 1.0}

    def cell(self, index: int) -> tuple[str, Complexity, str, str | None]:
        """The planned (intent, complexity, persona id, other intent) of dialogue `index`.

        The other intent is the everyday request a `turn_into` dialogue opens with or a `two_intents`
        dialogue mentions too, taken in turn so that a run walks as many domain-graph edges as it can.
        """
        while len(self._plan) <= index:
            intent = next(self._intents)
            complexity = Complexity(
                next(self._stream(("complexity", intent), self.complexity_shares[intent]))
            )
            people = {p.id: p.weight for p in self.pack.personas}
            persona = next(self._stream(("persona", intent), people))
            other = None
            if complexity in (Complexity.TURN_INTO, Complexity.TWO_INTENTS):
                others = {n: 1.0 for n in self.everyday if n != intent}
                other = next(self._stream(("other", intent, complexity.value), others))
            self._plan.append((intent, complexity, persona, other))
        return self._plan[index]

    def _stream(self, key: tuple[str, ...], shares: Mapping[_K, float]) -> _Systematic:
        seq = self._streams.get(key)
        if seq is None:
            cells = [str(c) for c in shares]
            seq = _Systematic(cells, list(shares.values()), self._plan_rng(":".join(key)))
            self._streams[key] = seq
        return seq

    def planned(self, n: int) -> list[tuple[str, Complexity, str, str | None]]:
        """The plan of the first `n` dialogues."""
        if n:
            self.cell(n - 1)
        return self._plan[:n]

    def targets(self, n: int) -> dict[tuple[str, Complexity], float]:
        """Expected dialogues per (intent, complexity) among the first `n`: the quota each cell is held to."""
        return {
            (intent, c): n * share * c_share
            for intent, share in self.intent_shares.items()
            for c, c_share in self.complexity_shares[intent].items()
        }

    def persona_share(self, persona: str) -> float:
        """A persona's share within every intent."""
        total = sum(p.weight for p in self.pack.personas)
        return self._personas_by_id[persona].weight / total

    # -- scenarios --------------------------------------------------------------------------------

    def scenario(self, index: int) -> Scenario:
        """Scenario `index`: its planned cell, and values drawn from its own stream."""
        name, complexity, persona_id, other = self.cell(index)
        rng = dialogue_rng(self.seed, index, "scenario")
        pack = self.pack
        intent = pack.intent(name)
        slots = {s: generate_value(pack.slot(s), pack, rng) for s in intent.slots}
        goal = Goal(
            intent=intent.name,
            slots=slots,
            escalation=intent.escalation.expected,
            escalation_within=intent.escalation.within_turns,
            critical=intent.critical,
            complexity=complexity,
        )
        if complexity is not Complexity.SIMPLE:
            goal = goal.model_copy(update=self._shape(goal, complexity, other, rng))
        return Scenario(
            id=f"s{index:06d}",
            index=index,
            persona=self._personas_by_id[persona_id],
            goal=goal,
            seed=rng.getrandbits(63),
        )

    def _shape(
        self, goal: Goal, complexity: Complexity, other: str | None, rng: random.Random
    ) -> dict[str, object]:
        if complexity is Complexity.TURN_INTO:
            return {"opens_with": other}
        if complexity is Complexity.TWO_INTENTS:
            return {"also": other, "also_first": rng.random() < 0.5}
        # A wrong value of the right kind: another draw of the slot's generator.
        name = rng.choice(sorted(goal.slots))
        slot = self.pack.slot(name)
        wrong = goal.slots[name]
        for _ in range(20):
            wrong = generate_value(slot, self.pack, rng)
            if wrong != goal.slots[name]:
                break
        if wrong == goal.slots[name]:
            return {"complexity": Complexity.SIMPLE}
        return {"mistaken": {name: wrong}}

    def __iter__(self) -> Iterator[Scenario]:
        index = 0
        while True:
            yield self.scenario(index)
            index += 1


_RECENT: list[Sampler] = []


def sample_scenario(pack: Pack, seed: int, index: int, *, quotas: Quotas | None = None) -> Scenario:
    """Scenario `index` of a run seeded with `seed` (see `Sampler`).

    The plan up to `index` is built once and kept for the last few (pack, seed, quotas), so drawing
    scenarios one by one costs what a `Sampler` would."""
    quotas = quotas or Quotas()
    for sampler in _RECENT:
        if sampler.pack is pack and sampler.seed == seed and sampler.quotas == quotas:
            return sampler.scenario(index)
    sampler = Sampler(pack, seed, quotas)
    _RECENT.insert(0, sampler)
    del _RECENT[4:]
    return sampler.scenario(index)


def sample_scenarios(pack: Pack, n: int, seed: int, *, quotas: Quotas | None = None) -> list[Scenario]:
    """The first `n` scenarios of a run seeded with `seed` (see `Sampler`)."""
    sampler = Sampler(pack, seed, quotas)
    return [sampler.scenario(i) for i in range(n)]
