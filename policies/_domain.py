"""The domain graph of a pack: which intents a dialogue can reach, what each needs, and how it should end.

A pack lists intents, slots and cues as flat YAML; `DomainGraph.from_pack` turns them into a directed graph
(`networkx.DiGraph`) so that structural mistakes show up before any dialogue is simulated: an intent no
scenario can start, a slot an assistant can never be seen asking for, a critical intent without a deadline
to reach a person. `DomainGraph.problems` lists them with the pack field to fix; `summary` and
`coverage_edges` describe the graph for reports.

Nodes (attribute `role`, ids in brackets):

- `start` [`start`]: before the user's first message.
- `intent` [`intent:<name>`]: attributes `name`, `critical`, `weight`, `escalation` (the pack's `Escalation`).
- `slot` [`slot:<name>`]: attributes `name`, `type` (the slot's `SlotType`, or None for a slot an intent
  names but the pack does not declare).
- `ask` [`action:ask:<slot>`]: the assistant asking for a slot; exists when the slot has cues to recognise
  the question by. Attributes `slot`, `cues` (how many).
- `confirm` [`action:confirm`]: the assistant reading back what it collected (recognised by
  `lexicon.confirm_cues`).
- `handoff` [`handoff`]: a person takes over.
- `end` [`end`]: the assistant serves the request itself.

Edges (attribute `kind`) and where each comes from:

- `opens` start -> intent: the intent has `openings` or `vague_openings`, so a scenario can begin with it.
- `needs` intent -> slot: the slot is listed in the intent's `slots`.
- `asked_by` slot -> action:ask: the slot has `cues`.
- `fills` action:ask -> slot: the slot has `answers` with a `{value}` placeholder, so a user asked for it
  can give a value (a template without `{value}` carries none).
- `confirms` intent -> action:confirm: the intent needs at least one slot, so there is something to confirm.
- `escalates` intent -> handoff: `escalation.expected` is `must`; attribute `within_turns`.
- `may_escalate` intent -> handoff: `escalation.expected` is `may`.
- `resolves` intent -> end: `escalation.expected` is `never` or `may`.
- `switches_to` intent -> intent: what a mid-dialogue topic switch of the user simulator can reach. The
  simulated user switches to any *other* intent that is not critical and has an opening without
  placeholders, so every intent gets an edge to each such intent.
- `turns_into` intent -> intent: what a `turn_into` dialogue walks: it opens with a non-critical intent
  that has an opening without placeholders and turns into a critical one mid-way (a balance question that
  becomes a fraud report). Attribute `shared`: the slot names the two have in common.

Reachability (for `unreachable_intent`) follows `opens`, `switches_to` and `turns_into`, the edges the
simulator actually takes.

Example:
    >>> from botdrill.scenarios import load_pack
    >>> graph = DomainGraph.from_pack(load_pack("banking"))
    >>> graph.problems()
    []
    >>> ("freeze_card", "lost_or_stolen_card", "turns_into") in graph.coverage_edges()
    True
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, get_args

import networkx as nx

from botdrill.scenarios import IntentSpec, Pack, SlotSpec

Severity = Literal["error", "warning"]
NodeRole = Literal["start", "intent", "slot", "ask", "confirm", "handoff", "end"]
EdgeKind = Literal[
    "opens",
    "needs",
    "asked_by",
    "fills",
    "confirms",
    "escalates",
    "may_escalate",
    "resolves",
    "switches_to",
    "turns_into",
]
EDGE_KINDS: tuple[EdgeKind, ...] = get_args(EdgeKind)
"""Every edge kind, in the order `summary` lists them."""
NODE_ROLES: tuple[NodeRole, ...] = get_args(NodeRole)
"""Every node role, in the order `summary` lists them."""

START = "start"
CONFIRM = "action:confirm"
HANDOFF = "handoff"
END = "end"


def intent_node(name: str) -> str:
    """The node id of intent `name`."""
    return f"intent:{name}"


def slot_node(name: str) -> str:
    """The node id of slot `name`."""
    return f"slot:{name}"


def ask_node(slot: str) -> str:
    """The node id of the assistant asking for `slot`."""
    return f"action:ask:{slot}"


@dataclass(frozen=True)
class Problem:
    """Something wrong with a pack's structure, found on its domain graph.

    Codes (all errors unless noted):

    - `unreachable_intent`: no scenario can start with the intent and no topic switch reaches it.
    - `undeclared_slot`: an intent needs a slot the pack does not declare under `slots`.
    - `slot_never_asked`: a needed slot has no cues, so no assistant question for it is recognised.
    - `slot_never_answered`: a needed slot has cues but no answer template with `{value}`, so a user
      asked for it cannot give a value.
    - `critical_not_must`: a critical intent whose escalation is not `must`.
    - `must_without_deadline`: an escalation `must` without `within_turns`.
    - `unused_slot` (warning): a slot declared but needed by no intent.
    """

    code: str
    """Stable identifier of the kind of problem."""
    node: str
    """The graph node it is about (`intent:report_fraud`, `slot:amount`)."""
    message: str
    """What is wrong and how to fix it, naming the pack field."""
    severity: Severity = "error"
    """`error`: the pack cannot be simulated or scored as meant; `warning`: dead weight, worth a look."""


class IntentEdge(NamedTuple):
    """An edge between two intents, for a coverage table."""

    source: str
    """Intent the dialogue is in."""
    target: str
    """Intent it moves to."""
    kind: EdgeKind
    """`switches_to` or `turns_into`."""


class DomainGraph:
    """A pack's intents, slots, assistant actions and outcomes as a typed `networkx.DiGraph`.

    Build it with `from_pack`; the graph itself is `graph` (read it, do not change it).
    """

    def __init__(self, pack: Pack, graph: Any) -> None:
        self.pack = pack
        """The pack the graph was built from."""
        self.graph: Any = graph
        """The `networkx.DiGraph`; nodes carry `role`, edges carry `kind`."""

    # ------------------------------------------------------------------------------------------ building

    @classmethod
    def from_pack(cls, pack: Pack) -> DomainGraph:
        """The domain graph of `pack` (see the module docstring for every node and edge).

        Works on packs made with `model_construct`/`model_copy` too, so that checks the pydantic models
        already enforce can still be exercised on the graph.
        """
        g = nx.DiGraph(pack=pack.name)
        g.add_node(START, role="start")
        g.add_node(CONFIRM, role="confirm")
        g.add_node(HANDOFF, role="handoff")
        g.add_node(END, role="end")

        for slot in pack.slots:
            _add_slot(g, slot)
        for intent in pack.intents:
            node = intent_node(intent.name)
            g.add_node(
                node,
                role="intent",
                name=intent.name,
                critical=intent.critical,
                weight=intent.weight,
                escalation=intent.escalation,
            )
            if intent.openings or intent.vague_openings:
                g.add_edge(START, node, kind="opens")
            for name in intent.slots:
                if slot_node(name) not in g:
                    g.add_node(slot_node(name), role="slot", name=name, type=None)
                g.add_edge(node, slot_node(name), kind="needs")
            if intent.slots:
                g.add_edge(node, CONFIRM, kind="confirms")
            expected = intent.escalation.expected
            if expected == "must":
                g.add_edge(node, HANDOFF, kind="escalates", within_turns=intent.escalation.within_turns)
            elif expected == "may":
                g.add_edge(node, HANDOFF, kind="may_escalate")
            if expected in ("never", "may"):
                g.add_edge(node, END, kind="resolves")

        switchable = [i.name for i in pack.intents if _switch_target(i)]
        for intent in pack.intents:
            for name in switchable:
                if name != intent.name:
                    g.add_edge(intent_node(intent.name), intent_node(name), kind="switches_to")
        for source in pack.intents:
            if not _switch_target(source):
                continue
            for critical in pack.intents:
                shared = sorted(set(source.slots) & set(critical.slots))
                if critical.critical:
                    g.add_edge(
                        intent_node(source.name), intent_node(critical.name), kind="turns_into", shared=shared
                    )
        return cls(pack, g)

    # ------------------------------------------------------------------------------------------ queries

    def nodes_of(self, role: NodeRole) -> list[str]:
        """Node ids of one role, in insertion (pack) order."""
        return [str(n) for n, data in self.graph.nodes(data=True) if data.get("role") == role]

    def edges_of(self, kind: EdgeKind) -> list[tuple[str, str]]:
        """Edges of one kind as (source, target) node ids, in insertion (pack) order."""
        return [(str(u), str(v)) for u, v, data in self.graph.edges(data=True) if data.get("kind") == kind]

    def reachable_intents(self) -> set[str]:
        """Intent names a dialogue can be in: reachable from `start` by `opens`, `switches_to` and
        `turns_into` edges."""
        walk = nx.subgraph_view(
            self.graph,
            filter_edge=lambda u, v: self.graph.edges[u, v]["kind"] in ("opens", "switches_to", "turns_into"),
        )
        seen = {str(n) for n in nx.descendants(walk, START)}
        return {n.removeprefix("intent:") for n in seen if n.startswith("intent:")}

    def coverage_edges(self) -> list[IntentEdge]:
        """The intent-to-intent edges (`switches_to`, `turns_into`), sorted, for a coverage table."""
        edges = [
            IntentEdge(u.removeprefix("intent:"), v.removeprefix("intent:"), kind)
            for kind in ("switches_to", "turns_into")
            for u, v in self.edges_of(kind)
        ]
        return sorted(edges)

    # ------------------------------------------------------------------------------------------ checks

    def problems(self) -> list[Problem]:
        """Structural problems of the pack, errors first, each in pack order (see `Problem` for codes)."""
        found = (
            self._unreachable() + self._slot_problems() + self._escalation_problems() + self._unused_slots()
        )
        return sorted(found, key=lambda p: p.severity != "error")

    def errors(self) -> list[Problem]:
        """The problems of severity `error`."""
        return [p for p in self.problems() if p.severity == "error"]

    def _unreachable(self) -> list[Problem]:
        reachable = self.reachable_intents()
        return [
            Problem(
                "unreachable_intent",
                intent_node(i.name),
                f"intent {i.name!r} has no openings and no vague openings, so no scenario can start with it "
                f"and no topic switch can reach it; add first messages under `intents.{i.name}.openings` "
                "(or remove the intent).",
            )
            for i in self.pack.intents
            if i.name not in reachable
        ]

    def _slot_problems(self) -> list[Problem]:
        out: list[Problem] = []
        for node in self.nodes_of("slot"):
            name = node.removeprefix("slot:")
            needed_by = self._needed_by(name)
            if not needed_by:
                continue
            users = ", ".join(repr(n) for n in needed_by)
            if self.graph.nodes[node].get("type") is None:
                out.append(
                    Problem(
                        "undeclared_slot",
                        node,
                        f"slot {name!r} is needed by intent {users} but is not declared; add it under "
                        f"`slots` (with type, cues and answers) or drop it from `intents.<name>.slots`.",
                    )
                )
                continue
            if ask_node(name) not in self.graph:
                out.append(
                    Problem(
                        "slot_never_asked",
                        node,
                        f"slot {name!r} is needed by intent {users} but has no cues, so an assistant asking "
                        f"for it is never recognised and the user never answers; add the phrases an "
                        f"assistant uses to ask for it under `slots.{name}.cues`.",
                    )
                )
            elif not self.graph.has_edge(ask_node(name), node):
                out.append(
                    Problem(
                        "slot_never_answered",
                        node,
                        f"slot {name!r} is needed by intent {users} and its question is recognised, but no "
                        f"answer template holds a `{{value}}` placeholder, so the user can never give a "
                        f"value; add templates such as 'it was {{value}}' under `slots.{name}.answers`.",
                    )
                )
        return out

    def _escalation_problems(self) -> list[Problem]:
        out: list[Problem] = []
        for intent in self.pack.intents:
            field = f"intents.{intent.name}.escalation"
            expected = intent.escalation.expected
            if intent.critical and expected != "must":
                out.append(
                    Problem(
                        "critical_not_must",
                        intent_node(intent.name),
                        f"intent {intent.name!r} is critical but its escalation is {expected!r}, so missing "
                        f"a hand-off is never scored as a miss; set `{field}.expected` to 'must' with "
                        f"`{field}.within_turns`, or set `intents.{intent.name}.critical` to false.",
                    )
                )
            if expected == "must" and intent.escalation.within_turns is None:
                out.append(
                    Problem(
                        "must_without_deadline",
                        intent_node(intent.name),
                        f"intent {intent.name!r} must reach a person but has no deadline, so a late "
                        f"hand-off is never caught; set `{field}.within_turns` (assistant turns, 1 or more).",
                    )
                )
        return out

    def _unused_slots(self) -> list[Problem]:
        return [
            Problem(
                "unused_slot",
                slot_node(s.name),
                f"slot {s.name!r} is declared but no intent needs it; add it to an intent's "
                f"`intents.<name>.slots` or remove `slots.{s.name}`.",
                "warning",
            )
            for s in self.pack.slots
            if not self._needed_by(s.name)
        ]

    def _needed_by(self, slot: str) -> list[str]:
        """Names of the intents that need `slot`, sorted."""
        return sorted(
            str(u).removeprefix("intent:")
            for u, _, kind in self.graph.in_edges(slot_node(slot), data="kind")
            if kind == "needs"
        )

    # ------------------------------------------------------------------------------------------ summary

    def summary(self) -> dict[str, Any]:
        """Counts for a report: intents, critical intents, slots, personas, nodes by role, edges by kind
        and problems by severity. Every kind and role is listed, zero or not, so the shape never changes.
        """
        node_roles = Counter(str(d.get("role")) for _, d in self.graph.nodes(data=True))
        edge_kinds = Counter(str(d.get("kind")) for _, _, d in self.graph.edges(data=True))
        severities = Counter(p.severity for p in self.problems())
        return {
            "pack": self.pack.name,
            "intents": len(self.pack.intents),
            "critical_intents": sum(1 for i in self.pack.intents if i.critical),
            "slots": len(self.pack.slots),
            "personas": len(self.pack.personas),
            "nodes": {r: node_roles[r] for r in NODE_ROLES},
            "edges": {k: edge_kinds[k] for k in EDGE_KINDS},
            "problems": {"error": severities["error"], "warning": severities["warning"]},
        }


def _add_slot(g: Any, slot: SlotSpec) -> None:
    node = slot_node(slot.name)
    g.add_node(node, role="slot", name=slot.name, type=slot.type)
    if slot.cues:
        ask = ask_node(slot.name)
        g.add_node(ask, role="ask", slot=slot.name, cues=len(slot.cues))
        g.add_edge(node, ask, kind="asked_by")
        if any("{value}" in a for a in slot.answers):
            g.add_edge(ask, node, kind="fills")


def _switch_target(intent: IntentSpec) -> bool:
    """Whether the user simulator's topic switch can land on `intent` (non-critical, a plain opening)."""
    return not intent.critical and bool(intent.plain_openings)
