"""What a run covered: quota cells against their targets, and the domain graph's edges it walked.

Written when a run finishes (and rewritten when it is resumed and finishes again) into the `coverage`
table, computed from the stored dialogues with SQL, so the table always agrees with them; an interrupted run
has none until it is resumed. Levels:

- `intent`, `intent_complexity`, `intent_persona`: scenarios per cell. `target` is the quota (the
  sampler's share times the run's scenarios, fractional), `planned` the scenarios the stratified plan gave
  the cell (within about one of the target), `dialogues` the scenarios stored; `filled` when every planned
  one is stored. A cell whose target is below one may be planned nothing, and is then trivially filled:
  compare `target` with `planned` to see which small cells a short run left out.
- `intent_perturbation`: dialogues per intent and variant (every scenario runs under every variant, in
  every trial).
- `edge`: dialogues that walked each observable edge of the pack's domain graph: `opens` (the intent the
  user raised first), `turns_into` (the dialogue turned from one intent to the other), `switches_to` (a
  topic switch from the goal to the other intent), `needs` (the user said the slot), `escalates` and
  `may_escalate` (a hand-off), `resolves` (served without a hand-off, the user left satisfied); `filled` when
  at least one did. Edges of the assistant's actions (`asked_by`, `fills`, `confirms`) are not listed: a
  bot's words do not say reliably which slot it asked for.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import duckdb

from botdrill.policies import DomainGraph
from botdrill.policies._domain import EdgeKind
from botdrill.scenarios import Pack, Sampler

_OBSERVED_KINDS: tuple[EdgeKind, ...] = (
    "opens",
    "turns_into",
    "switches_to",
    "needs",
    "escalates",
    "may_escalate",
    "resolves",
)

_EDGE_SQL: dict[str, str] = {
    "opens": """
        SELECT 'start', walk[1], count(*) FROM dialogues WHERE run_id = $run GROUP BY ALL""",
    "turns_into": """
        SELECT d.walk[1], d.walk[2], count(*) FROM dialogues d
        WHERE d.run_id = $run AND d.complexity = 'turn_into' AND EXISTS (
            SELECT 1 FROM turns t WHERE t.dialogue_id = d.dialogue_id AND t.speaker = 'user'
              AND t.gold_intent = d.walk[2])
        GROUP BY ALL""",
    "switches_to": """
        SELECT d.gold_intent, t.gold_intent, count(DISTINCT d.dialogue_id)
        FROM turns t JOIN dialogues d USING (dialogue_id)
        WHERE d.run_id = $run AND list_contains(t.gold_acts, 'switch_topic') GROUP BY ALL""",
    "needs": """
        SELECT d.gold_intent, u.s.slot, count(DISTINCT d.dialogue_id)
        FROM turns t JOIN dialogues d USING (dialogue_id), unnest(t.gold_slots) AS u(s)
        WHERE d.run_id = $run AND t.gold_intent = d.gold_intent GROUP BY ALL""",
    "escalates": """
        SELECT gold_intent, 'handoff', count(*) FROM dialogues WHERE run_id = $run AND escalated
        GROUP BY ALL""",
    "resolves": """
        SELECT gold_intent, 'end', count(*) FROM dialogues
        WHERE run_id = $run AND NOT escalated AND end_reason = 'user_done' GROUP BY ALL""",
}
_EDGE_SQL["may_escalate"] = _EDGE_SQL["escalates"]


def _name(node: str) -> str:
    return node.split(":")[-1]


def coverage_rows(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    pack: Pack,
    sampler: Sampler,
    n: int,
    variants: list[str],
    trials: int = 1,
) -> list[dict[str, Any]]:
    """The coverage rows of run `run_id`, which sampled `n` scenarios with `sampler` under `variants`,
    each in `trials` trials."""

    def counts(sql: str) -> dict[tuple[str, ...], int]:
        rows = con.execute(sql, {"run": run_id}).fetchall()
        return {tuple(str(v) for v in row[:-1]): int(row[-1]) for row in rows}

    rows: list[dict[str, Any]] = []

    def cell(level: str, target: float, planned: int, seen: int, **keys: str) -> None:
        rows.append(
            {
                "run_id": run_id,
                "level": level,
                **keys,
                "target": target,
                "planned": planned,
                "dialogues": seen,
                "filled": seen >= planned,
            }
        )

    plan = sampler.planned(n)
    plan_intent = Counter(intent for intent, _, _, _ in plan)
    plan_complexity = Counter((intent, c.value) for intent, c, _, _ in plan)
    plan_persona = Counter((intent, persona) for intent, _, persona, _ in plan)

    per_intent = counts(
        "SELECT gold_intent, count(DISTINCT scenario_id) FROM dialogues WHERE run_id = $run GROUP BY ALL"
    )
    per_complexity = counts(
        "SELECT gold_intent, complexity, count(DISTINCT scenario_id) FROM dialogues WHERE run_id = $run "
        "GROUP BY ALL"
    )
    per_persona = counts(
        "SELECT gold_intent, persona, count(DISTINCT scenario_id) FROM dialogues WHERE run_id = $run "
        "GROUP BY ALL"
    )
    per_variant = counts(
        "SELECT gold_intent, variant, count(*) FROM dialogues WHERE run_id = $run GROUP BY ALL"
    )
    targets = sampler.targets(n)
    for intent, share in sampler.intent_shares.items():
        planned = plan_intent[intent]
        cell("intent", n * share, planned, per_intent.get((intent,), 0), intent=intent)
        for (name, complexity), target in targets.items():
            if name == intent:
                key = (intent, complexity.value)
                seen = per_complexity.get(key, 0)
                cell(
                    "intent_complexity", target, plan_complexity[key], seen, intent=intent, complexity=key[1]
                )
        for persona in pack.personas:
            target = n * share * sampler.persona_share(persona.id)
            key = (intent, persona.id)
            cell(
                "intent_persona",
                target,
                plan_persona[key],
                per_persona.get(key, 0),
                intent=intent,
                persona=key[1],
            )
        for variant in variants:
            seen = per_variant.get((intent, variant), 0)
            cell(
                "intent_perturbation",
                n * share * trials,
                planned * trials,
                seen,
                intent=intent,
                perturbation=variant,
            )

    graph = DomainGraph.from_pack(pack)
    walked = {kind: counts(_EDGE_SQL[kind]) for kind in _OBSERVED_KINDS}
    for kind in _OBSERVED_KINDS:
        for u, v in graph.edges_of(kind):
            source, target_node = _name(u), _name(v)
            seen = walked[kind].get((source, target_node), 0)
            rows.append(
                {
                    "run_id": run_id,
                    "level": "edge",
                    "edge_kind": kind,
                    "edge_source": source,
                    "edge_target": target_node,
                    "target": None,
                    "planned": None,
                    "dialogues": seen,
                    "filled": seen > 0,
                }
            )
    return rows
