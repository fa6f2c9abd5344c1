"""Sampling scenarios: one independent, reproducible random stream per dialogue."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from botdrill.scenarios import (
    Complexity,
    Pack,
    QuotaError,
    Quotas,
    Sampler,
    Scenario,
    dialogue_rng,
    sample_scenario,
    sample_scenarios,
)

N = 3000


def _fingerprint(s: Scenario) -> list[object]:
    return [s.id, s.index, s.persona.id, s.goal.intent, s.goal.slots, s.seed]


@settings(max_examples=50, deadline=None, database=None)
@given(seed=st.integers(min_value=-(2**63), max_value=2**63), index=st.integers(min_value=0, max_value=10**6))
def test_same_seed_and_index_give_the_same_scenario(pack: Pack, seed: int, index: int) -> None:
    first = sample_scenario(pack, seed, index)
    again = sample_scenario(pack, seed, index)
    assert first == again
    assert first.index == index
    assert first.id == f"s{index:06d}"


def test_scenario_does_not_depend_on_how_many_are_sampled(pack: Pack) -> None:
    small = sample_scenarios(pack, 5, seed=42)
    large = sample_scenarios(pack, 40, seed=42)
    assert large[:5] == small
    assert sample_scenario(pack, 42, 17) == large[17]
    assert [s.index for s in large] == list(range(40))


def test_different_seeds_differ(pack: Pack) -> None:
    a = sample_scenarios(pack, 30, seed=1)
    b = sample_scenarios(pack, 30, seed=2)
    assert a != b
    assert sum(x.goal != y.goal or x.persona != y.persona for x, y in zip(a, b, strict=True)) >= 15
    assert len({s.seed for s in a} | {s.seed for s in b}) == 60


def test_different_indices_differ(pack: Pack) -> None:
    scenarios = sample_scenarios(pack, 50, seed=3)
    assert len({s.seed for s in scenarios}) == 50
    assert len({s.goal.intent for s in scenarios}) >= 6


def test_goal_matches_its_intent(pack: Pack) -> None:
    for s in sample_scenarios(pack, 200, seed=5):
        intent = pack.intent(s.goal.intent)
        assert set(s.goal.slots) == set(intent.slots)
        assert s.goal.critical is intent.critical
        assert s.goal.escalation == intent.escalation.expected
        assert s.goal.escalation_within == intent.escalation.within_turns
        assert s.persona in pack.personas
        assert 0 <= s.seed < 2**63


def test_stable_across_processes(pack: Pack) -> None:
    # String seeds are hashed with SHA-512, not hash(): another process with another hash seed agrees.
    code = (
        "import json; from botdrill.scenarios import load_pack, sample_scenarios, dialogue_rng; "
        "p = load_pack('banking'); "
        "print(json.dumps([[s.id, s.index, s.persona.id, s.goal.intent, s.goal.slots, s.seed] "
        "for s in sample_scenarios(p, 5, seed=11)] + [dialogue_rng(11, 2, 'user').random()]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, timeout=60
    )
    theirs = json.loads(out.stdout)
    ours = [_fingerprint(s) for s in sample_scenarios(pack, 5, seed=11)]
    ours.append(dialogue_rng(11, 2, "user").random())
    assert theirs == ours


def test_dialogue_rng_streams_are_independent() -> None:
    assert dialogue_rng(1, 0, "user").random() == dialogue_rng(1, 0, "user").random()
    draws = {
        dialogue_rng(*key).random()
        for key in [(1, 0, "user"), (1, 0, "scenario"), (1, 1, "user"), (2, 0, "user")]
    }
    assert len(draws) == 4


def test_critical_share_one_gives_only_critical(pack: Pack) -> None:
    scenarios = sample_scenarios(pack, 600, seed=9, quotas=Quotas(critical_share=1.0))
    assert all(s.goal.critical for s in scenarios)
    # Uniform among the critical intents, whatever their traffic weights.
    counts = Counter(s.goal.intent for s in scenarios)
    critical = [i.name for i in pack.intents if i.critical]
    assert set(counts) == set(critical)
    expected = 600 / len(critical)
    # Stratified: every critical intent within one dialogue of its quota.
    assert all(abs(c - expected) < 1 for c in counts.values()), counts


def test_critical_share_zero_gives_only_common(pack: Pack) -> None:
    scenarios = sample_scenarios(pack, 600, seed=9, quotas=Quotas(critical_share=0.0))
    assert not any(s.goal.critical for s in scenarios)
    assert {s.goal.intent for s in scenarios} == {i.name for i in pack.intents if not i.critical}


@pytest.fixture(scope="module")
def many(pack: Pack) -> list[Scenario]:
    return sample_scenarios(pack, N, seed=2026)


def test_default_critical_share_is_about_half(many: list[Scenario]) -> None:
    share = sum(s.goal.critical for s in many) / N
    assert 0.45 < share < 0.55


def test_common_intent_weights_are_respected(pack: Pack) -> None:
    scenarios = sample_scenarios(pack, N, seed=77, quotas=Quotas(critical_share=0.0))
    counts = Counter(s.goal.intent for s in scenarios)
    common = [i for i in pack.intents if not i.critical]
    total = sum(i.weight for i in common)
    for intent in common:
        p = intent.weight / total
        expected = N * p
        sigma = (N * p * (1 - p)) ** 0.5
        assert abs(counts[intent.name] - expected) < 4 * sigma, (intent.name, counts[intent.name], expected)
    # And the ordering of the extremes holds.
    heaviest = max(common, key=lambda i: i.weight).name
    lightest = min(common, key=lambda i: i.weight).name
    assert counts[heaviest] > 2 * counts[lightest]


def test_persona_weights_are_respected(pack: Pack, many: list[Scenario]) -> None:
    counts = Counter(s.persona.id for s in many)
    total = sum(p.weight for p in pack.personas)
    for persona in pack.personas:
        p = persona.weight / total
        expected = N * p
        sigma = (N * p * (1 - p)) ** 0.5
        assert abs(counts[persona.id] - expected) < 4 * sigma, (persona.id, counts[persona.id], expected)


def test_pack_with_only_critical_intents(pack: Pack) -> None:
    data = pack.model_dump()
    data["intents"] = [i for i in data["intents"] if i["critical"]]
    only_critical = Pack.model_validate(data)
    scenarios = sample_scenarios(only_critical, 50, seed=1, quotas=Quotas(critical_share=0.0))
    assert all(s.goal.critical for s in scenarios)


# -- stratified quotas ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_every_prefix_stays_within_about_one_of_every_intent_quota(pack: Pack, seed: int) -> None:
    sampler = Sampler(pack, seed)
    counts: Counter[str] = Counter()
    for n in range(1, 401):
        counts[sampler.scenario(n - 1).goal.intent] += 1
        for intent, share in sampler.intent_shares.items():
            assert abs(counts[intent] - n * share) <= 1.25 + 1e-9, (n, intent, counts[intent], n * share)


def test_rare_critical_intents_are_drilled_however_rare_in_traffic(pack: Pack) -> None:
    # customer_in_crisis has 0.2 of check_balance's 10 in traffic weight, and the same quota as fraud.
    scenarios = sample_scenarios(pack, 24, seed=5)
    counts = Counter(s.goal.intent for s in scenarios)
    for intent in (i for i in pack.intents if i.critical):
        assert counts[intent.name] == 2, counts  # 24 x 0.5 / 6 critical intents


def test_complexities_within_each_intent_follow_their_shares(pack: Pack) -> None:
    sampler = Sampler(
        pack, 3, Quotas(complexity=Quotas.parse_complexity("simple:2,turn_into:1,two_intents:1"))
    )
    scenarios = [sampler.scenario(i) for i in range(600)]
    targets = sampler.targets(600)
    cells = Counter((s.goal.intent, s.goal.complexity) for s in scenarios)
    for (intent, complexity), target in targets.items():
        # Within one of the target, given the intent's own count is within one of its quota.
        assert abs(cells[(intent, complexity)] - target) < 2, (intent, complexity, cells, target)
    # turn_into only for critical intents: an everyday request cannot turn into an everyday one.
    assert all(s.goal.critical for s in scenarios if s.goal.complexity is Complexity.TURN_INTO)
    assert not any(s.goal.complexity is Complexity.CORRECTION for s in scenarios)


def test_complexity_an_intent_cannot_take_goes_to_the_others(pack: Pack) -> None:
    sampler = Sampler(pack, 0, Quotas(complexity={Complexity.CORRECTION: 1.0}))
    no_slots = [i for i in pack.intents if not i.slots]
    assert no_slots
    for intent in no_slots:
        assert Complexity.CORRECTION not in sampler.feasible(intent)
        assert sampler.complexity_shares[intent.name] == {Complexity.SIMPLE: 1.0}


def test_shapes_are_walks_on_the_domain_graph(pack: Pack) -> None:
    from botdrill.policies import DomainGraph

    graph = DomainGraph.from_pack(pack)
    turns_into = {(e.source, e.target) for e in graph.coverage_edges() if e.kind == "turns_into"}
    everyday = {i.name for i in pack.intents if not i.critical and i.plain_openings}
    seen: set[Complexity] = set()
    for s in sample_scenarios(pack, 300, seed=11):
        goal = s.goal
        seen.add(goal.complexity)
        if goal.complexity is Complexity.TURN_INTO:
            assert goal.opens_with is not None
            assert (goal.opens_with, goal.intent) in turns_into
            assert goal.walk == [goal.opens_with, goal.intent]
        elif goal.complexity is Complexity.TWO_INTENTS:
            assert goal.also in everyday and goal.also != goal.intent
            assert set(goal.walk) == {goal.also, goal.intent}
        elif goal.complexity is Complexity.CORRECTION:
            ((slot, wrong),) = goal.mistaken.items()
            assert slot in goal.slots and wrong != goal.slots[slot]
        else:
            assert goal.walk == [goal.intent]
            assert goal.opens_with is None and goal.also is None and not goal.mistaken
    assert seen == set(Complexity)


def test_plan_is_prefix_stable_and_seeded(pack: Pack) -> None:
    a = Sampler(pack, 4)
    b = Sampler(pack, 4)
    late_first = b.scenario(99)
    assert [a.cell(i) for i in range(100)] == [b.cell(i) for i in range(100)]
    assert a.scenario(99) == late_first
    assert [a.cell(i) for i in range(50)] != [Sampler(pack, 5).cell(i) for i in range(50)]


def test_explicit_intent_quota(pack: Pack) -> None:
    quotas = Quotas(intents=Quotas.parse_intents("report_fraud:0.5"))
    scenarios = sample_scenarios(pack, 100, seed=2, quotas=quotas)
    assert Counter(s.goal.intent for s in scenarios)["report_fraud"] == 50


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("simple:1,wobbly:2", "unknown complexity 'wobbly'"),
        ("simple:x", "is not a number"),
        ("simple:-1", "non-negative"),
        ("simple:0", "all zero"),
    ],
)
def test_bad_complexity_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(QuotaError, match=message):
        Quotas.parse_complexity(spec)


def test_bad_intent_quotas_say_what_is_wrong(pack: Pack) -> None:
    with pytest.raises(QuotaError, match="NAME:SHARE"):
        Quotas.parse_intents("report_fraud")
    with pytest.raises(QuotaError, match="not_an_intent"):
        Sampler(pack, 0, Quotas(intents={"not_an_intent": 0.1}))
    with pytest.raises(ValueError, match="more than 1"):
        Quotas(intents={"report_fraud": 0.7, "bereavement": 0.6})
