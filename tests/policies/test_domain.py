"""The domain graph of a pack: the built-in pack's shape, and each structural problem on a broken pack.

Packs the pydantic models would reject (a slot without cues, an intent without openings) are made with
`model_copy(update=...)`, which skips validation, so that the graph's own checks are exercised.
"""

from __future__ import annotations

from typing import Any

import pytest

from botdrill.policies._domain import EDGE_KINDS, NODE_ROLES, DomainGraph, Problem
from botdrill.scenarios import Escalation, IntentSpec, Pack, SlotSpec, load_pack

CRITICAL = {
    "report_fraud",
    "lost_or_stolen_card",
    "account_takeover",
    "unrecognised_transaction",
    "bereavement",
    "customer_in_crisis",
}


@pytest.fixture(scope="module")
def pack() -> Pack:
    return load_pack("banking")


@pytest.fixture(scope="module")
def banking(pack: Pack) -> DomainGraph:
    return DomainGraph.from_pack(pack)


def _validated(pack: Pack, edit: Any) -> Pack:
    """`pack` dumped to a dict, changed by `edit`, and validated again."""
    data = pack.model_dump()
    edit(data)
    return Pack.model_validate(data)


def _with_intent(pack: Pack, name: str, **update: Any) -> Pack:
    """`pack` with intent `name` changed without validation."""
    intents = [i.model_copy(update=update) if i.name == name else i for i in pack.intents]
    return pack.model_copy(update={"intents": intents})


def _with_slot(pack: Pack, name: str, **update: Any) -> Pack:
    """`pack` with slot `name` changed without validation."""
    slots = [s.model_copy(update=update) if s.name == name else s for s in pack.slots]
    return pack.model_copy(update={"slots": slots})


def _codes(graph: DomainGraph) -> list[tuple[str, str, str]]:
    return [(p.code, p.node, p.severity) for p in graph.problems()]


# ------------------------------------------------------------------------------------------ banking pack


def test_banking_has_every_node_role_and_the_expected_edge_kinds(pack: Pack, banking: DomainGraph) -> None:
    g = banking.graph
    assert {d["role"] for _, d in g.nodes(data=True)} == set(NODE_ROLES)
    assert {d["kind"] for _, _, d in g.edges(data=True)} == set(EDGE_KINDS) - {"may_escalate"}
    assert len(banking.nodes_of("intent")) == len(pack.intents) == 15
    assert banking.nodes_of("slot") == [f"slot:{s.name}" for s in pack.slots]
    assert banking.nodes_of("ask") == [f"action:ask:{s.name}" for s in pack.slots]

    fraud = g.nodes["intent:report_fraud"]
    assert (fraud["critical"], fraud["weight"]) == (True, 0.5)
    assert fraud["escalation"] == Escalation(expected="must", within_turns=3)
    assert g.nodes["slot:amount"]["type"] == "amount"

    assert g.edges["start", "intent:branch_hours"]["kind"] == "opens"
    assert g.edges["intent:report_fraud", "slot:merchant"]["kind"] == "needs"
    assert g.edges["slot:merchant", "action:ask:merchant"]["kind"] == "asked_by"
    assert g.edges["action:ask:merchant", "slot:merchant"]["kind"] == "fills"
    assert g.edges["intent:report_fraud", "handoff"] == {"kind": "escalates", "within_turns": 3}
    assert g.edges["intent:check_balance", "end"]["kind"] == "resolves"
    assert g.edges["intent:pay_bill", "action:confirm"]["kind"] == "confirms"
    assert not g.has_edge("intent:check_balance", "action:confirm")  # nothing to confirm
    assert not g.has_edge("intent:report_fraud", "end")  # a must never resolves on its own


def test_banking_has_no_problems(banking: DomainGraph) -> None:
    assert banking.problems() == []
    assert banking.errors() == []
    assert banking.reachable_intents() == {i.name for i in banking.pack.intents}


def test_switches_reach_every_non_critical_intent_from_every_other(banking: DomainGraph) -> None:
    switches = {(e.source, e.target) for e in banking.coverage_edges() if e.kind == "switches_to"}
    names = [i.name for i in banking.pack.intents]
    targets = [n for n in names if n not in CRITICAL]
    assert switches == {(s, t) for s in names for t in targets if s != t}
    assert not any(t in CRITICAL for _, t in switches)


def test_turns_into_joins_every_everyday_intent_to_every_critical_one(
    pack: Pack, banking: DomainGraph
) -> None:
    turns = {(e.source, e.target) for e in banking.coverage_edges() if e.kind == "turns_into"}
    everyday = [i.name for i in pack.intents if not i.critical and i.plain_openings]
    critical = [i.name for i in pack.intents if i.critical]
    assert turns == {(s, t) for s in everyday for t in critical}
    # The slots the two have in common are kept on the edge, for reports.
    assert banking.graph.edges["intent:transfer_money", "intent:report_fraud"]["shared"] == ["amount"]
    assert banking.graph.edges["intent:check_balance", "intent:report_fraud"]["shared"] == []


def test_summary_is_deterministic(pack: Pack, banking: DomainGraph) -> None:
    summary = banking.summary()
    assert summary == DomainGraph.from_pack(load_pack("banking")).summary()
    assert summary == {
        "pack": "banking",
        "intents": 15,
        "critical_intents": 6,
        "slots": 8,
        "personas": 15,
        "nodes": {"start": 1, "intent": 15, "slot": 8, "ask": 8, "confirm": 1, "handoff": 1, "end": 1},
        "edges": {
            "opens": 15,
            "needs": 17,
            "asked_by": 8,
            "fills": 8,
            "confirms": 11,
            "escalates": 6,
            "may_escalate": 0,
            "resolves": 9,
            "switches_to": 9 * 14,
            "turns_into": 9 * 6,
        },
        "problems": {"error": 0, "warning": 0},
    }
    assert banking.coverage_edges() == sorted(banking.coverage_edges())


# ------------------------------------------------------------------------------------------ broken packs


def test_critical_intent_that_may_escalate(pack: Pack) -> None:
    def edit(data: dict[str, Any]) -> None:
        fraud = next(i for i in data["intents"] if i["name"] == "report_fraud")
        fraud["escalation"] = {"expected": "may", "within_turns": None}

    graph = DomainGraph.from_pack(_validated(pack, edit))
    assert _codes(graph) == [("critical_not_must", "intent:report_fraud", "error")]
    assert "intents.report_fraud.escalation.expected" in graph.problems()[0].message
    assert graph.graph.edges["intent:report_fraud", "handoff"]["kind"] == "may_escalate"
    assert graph.graph.edges["intent:report_fraud", "end"]["kind"] == "resolves"


def test_must_without_deadline(pack: Pack) -> None:
    loose = Escalation.model_construct(expected="must", within_turns=None)  # the model forbids it
    graph = DomainGraph.from_pack(_with_intent(pack, "bereavement", escalation=loose))
    assert _codes(graph) == [("must_without_deadline", "intent:bereavement", "error")]
    assert "intents.bereavement.escalation.within_turns" in graph.problems()[0].message


def test_needed_slot_without_cues(pack: Pack) -> None:
    graph = DomainGraph.from_pack(_with_slot(pack, "postcode", cues=[]))
    assert _codes(graph) == [("slot_never_asked", "slot:postcode", "error")]
    message = graph.problems()[0].message
    assert "slots.postcode.cues" in message and "'update_address'" in message
    assert "action:ask:postcode" not in graph.graph


def test_needed_slot_without_usable_answers(pack: Pack) -> None:
    graph = DomainGraph.from_pack(_with_slot(pack, "amount", answers=["no idea", "a lot"]))
    problems = graph.problems()
    assert _codes(graph) == [("slot_never_answered", "slot:amount", "error")]
    assert "slots.amount.answers" in problems[0].message
    assert "'pay_bill', 'report_fraud', 'transfer_money', 'unrecognised_transaction'" in problems[0].message
    assert graph.graph.has_edge("slot:amount", "action:ask:amount")
    assert not graph.graph.has_edge("action:ask:amount", "slot:amount")


def test_intent_without_openings_is_unreachable(pack: Pack) -> None:
    graph = DomainGraph.from_pack(_with_intent(pack, "branch_hours", openings=[], vague_openings=[]))
    assert _codes(graph) == [("unreachable_intent", "intent:branch_hours", "error")]
    assert "intents.branch_hours.openings" in graph.problems()[0].message
    assert "branch_hours" not in graph.reachable_intents()
    assert not graph.graph.has_edge("start", "intent:branch_hours")
    assert not graph.graph.has_edge("intent:check_balance", "intent:branch_hours")


def test_vague_openings_alone_reach_an_intent_but_no_switch_does(pack: Pack) -> None:
    graph = DomainGraph.from_pack(_with_intent(pack, "branch_hours", openings=[]))
    assert graph.problems() == []
    assert graph.graph.has_edge("start", "intent:branch_hours")
    assert not any(e.target == "branch_hours" for e in graph.coverage_edges())


def test_switch_needs_an_opening_without_placeholders(pack: Pack) -> None:
    only_filled = ["What time does the {branch} branch open?"] * 3
    graph = DomainGraph.from_pack(_with_intent(pack, "branch_hours", openings=only_filled))
    assert graph.problems() == []
    assert not any(e.target == "branch_hours" for e in graph.coverage_edges())


def test_unused_slot_is_a_warning(pack: Pack) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["slots"].append(
            {"name": "sort_code", "type": "card_last4", "cues": ["sort code"], "answers": ["{value}"]}
        )

    graph = DomainGraph.from_pack(_validated(pack, edit))
    assert graph.problems() == [
        Problem(
            "unused_slot",
            "slot:sort_code",
            "slot 'sort_code' is declared but no intent needs it; add it to an intent's "
            "`intents.<name>.slots` or remove `slots.sort_code`.",
            "warning",
        )
    ]
    assert graph.errors() == []
    assert graph.summary()["problems"] == {"error": 0, "warning": 1}


def test_undeclared_slot(pack: Pack) -> None:
    graph = DomainGraph.from_pack(_with_intent(pack, "check_balance", slots=["account_type"]))
    assert _codes(graph) == [("undeclared_slot", "slot:account_type", "error")]
    assert graph.graph.nodes["slot:account_type"]["type"] is None


def test_problems_list_errors_before_warnings_in_pack_order(pack: Pack) -> None:
    extra = SlotSpec.model_construct(
        name="spare", type="choice", values=["x"], cues=["spare"], answers=["{value}"]
    )
    broken = _with_intent(pack, "branch_hours", openings=[], vague_openings=[])
    broken = _with_intent(broken, "report_fraud", escalation=Escalation(expected="never"))
    broken = _with_slot(broken, "payee", cues=[])
    broken = broken.model_copy(update={"slots": [extra, *broken.slots]})
    assert _codes(DomainGraph.from_pack(broken)) == [
        ("unreachable_intent", "intent:branch_hours", "error"),
        ("slot_never_asked", "slot:payee", "error"),
        ("critical_not_must", "intent:report_fraud", "error"),
        ("unused_slot", "slot:spare", "warning"),
    ]


def test_a_constructed_intent_builds_like_a_validated_one(pack: Pack) -> None:
    intent = IntentSpec.model_construct(
        name="close_account",
        description="closing",
        critical=False,
        weight=1.0,
        slots=[],
        escalation=Escalation(expected="never"),
        openings=["close my account"],
        vague_openings=[],
        restatements=["close it"],
    )
    graph = DomainGraph.from_pack(pack.model_copy(update={"intents": [*pack.intents, intent]}))
    assert graph.problems() == []
    assert graph.graph.has_edge("intent:report_fraud", "intent:close_account")
