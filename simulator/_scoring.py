"""Scoring one finished dialogue against its gold labels: a pure function of what happened."""

from __future__ import annotations

import hashlib
from typing import Literal

from botdrill.policies import EscalationRule, EscalationSpec, Events, judge
from botdrill.scenarios import Goal, Pack, Scenario, normalize_value

from ._records import DialogueRecord, EndReason, Outcome, SlotCheck, SlotStatus, TurnRecord
from ._variants import Job


def check_slots(pack: Pack, scenario: Scenario, captured: dict[str, str] | None) -> list[SlotCheck]:
    """Compare each gold slot with the assistant's final captured value, both normalised."""
    checks = []
    for name, expected in scenario.goal.slots.items():
        slot = pack.slot(name)
        if captured is None:
            checks.append(
                SlotCheck(
                    slot=name,
                    expected=expected,
                    captured=None,
                    captured_normalized=None,
                    status="not_exposed",
                )
            )
            continue
        raw = captured.get(name)
        normalized = normalize_value(slot, raw, pack)
        status: SlotStatus = "missing" if raw is None else ("correct" if normalized == expected else "wrong")
        checks.append(
            SlotCheck(
                slot=name, expected=expected, captured=raw, captured_normalized=normalized, status=status
            )
        )
    return checks


def transcript_digest(turns: list[TurnRecord]) -> str:
    """SHA-256 over speakers and texts, in order."""
    digest = hashlib.sha256()
    for turn in turns:
        digest.update(f"{turn.speaker}\x1f{turn.text}\x1e".encode())
    return digest.hexdigest()


def escalation_events(spec: EscalationSpec, intent: str, turns: list[TurnRecord]) -> Events:
    """What in a transcript bears on escalation, counted in assistant turns (see `Events`)."""
    bots = 0
    intent_at = request_at = crisis_at = None
    failures: list[int] = []
    previous: str | None = None
    for t in turns:
        if t.speaker == "assistant":
            bots += 1
            if t.error_type is None:
                # A policy that hands over in place of a failed reply is credited with that failure: the
                # user was spared it, and the hand-off is what the repeated-failure trigger asks for.
                if spec.failed(t.text, previous) or t.escalated_by == "failures":
                    failures.append(bots)
                previous = t.text
            continue
        acts = t.gold_acts or ()
        if intent_at is None and t.gold_intent == intent and t.text:
            intent_at = bots
        if request_at is None and "request_human" in acts:
            request_at = bots
        if crisis_at is None and "crisis_cue" in acts:
            crisis_at = bots
    return Events(intent_at=intent_at, request_at=request_at, crisis_at=crisis_at, failures=tuple(failures))


SimulatorFault = Literal[
    "left_goal", "wrong_value", "invented_value", "uncorrected_mistake", "ended_early", "user_error"
]


def simulator_fault(goal: Goal, turns: list[TurnRecord]) -> SimulatorFault | None:
    """Why the simulated user, not the assistant, is to blame for how a dialogue went, if it is.

    - `left_goal`: a user message pursues an intent outside the goal's walk, and not as a labelled topic
      switch (the user contradicted its own goal).
    - `wrong_value`: a gold slot value the user said differs from its goal.
    - `uncorrected_mistake`: the user said a value by mistake (a `correction` dialogue) and the dialogue
      ended before it corrected it, so a bot that kept the wrong value did nothing wrong.
    - `ended_early`: the user left before the assistant answered anything it had said about its goal.

    - `invented_value`: an LLM user stated a slot value that is not its goal's (its consistency check
      marks the turn; a left goal found there is marked `left_goal` the same way).
    - `user_error`: an LLM user's model failed, so the dialogue ended without the bot's doing.

    The built-in user keeps to its goal by construction, so only `uncorrected_mistake` and `ended_early`
    occur with it; an LLM user can do all of them.
    """
    if turns and turns[-1].speaker == "user" and turns[-1].error_type is not None:
        return "user_error"
    walk = set(goal.walk)
    raised_at: int | None = None
    bots = 0
    for t in turns:
        if t.speaker == "assistant":
            bots += 1
            continue
        if t.user_fault in ("invented_value", "left_goal"):
            return t.user_fault  # type: ignore[return-value]  # checked just above
        acts = t.gold_acts or []
        if t.gold_intent is not None and t.gold_intent not in walk and "switch_topic" not in acts:
            return "left_goal"
        for gold in t.gold_slots or []:
            if goal.slots.get(gold.slot) != gold.value:
                return "wrong_value"
        if raised_at is None and t.gold_intent == goal.intent and t.text:
            raised_at = bots
    if goal.mistaken:
        corrected = {
            g.slot
            for t in turns
            if t.speaker == "user" and "correct" in (t.gold_acts or [])
            for g in t.gold_slots or []
        }
        said_wrong = any(
            e.perturbation == "correction" for t in turns if t.speaker == "user" for e in t.edits or []
        )
        if said_wrong and not set(goal.mistaken) <= corrected:
            return "uncorrected_mistake"
    last = turns[-1] if turns else None
    user_left = (
        last is not None
        and last.speaker == "user"
        and bool({"goodbye", "give_up", "abandon"} & set(last.gold_acts or []))
    )
    if user_left and (raised_at is None or bots <= raised_at):
        return "ended_early"
    return None


def score(
    *,
    pack: Pack,
    run_id: str,
    job: Job,
    turns: list[TurnRecord],
    end_reason: EndReason,
    error: tuple[str, str] | None,
    user_requested_human: bool,
    spec: EscalationSpec | None = None,
    policy: str = "none",
) -> tuple[DialogueRecord, list[SlotCheck]]:
    """Score a finished dialogue.

    Args:
        pack: the pack the scenario came from (slot types for normalisation).
        run_id: the run.
        job: the scenario and the variant it ran as.
        turns: the transcript, with what the assistant exposed on each of its turns.
        end_reason: why the dialogue stopped.
        error: `(type, message)` of the assistant's failure, if any.
        user_requested_human: whether the user asked for a person at some point.
        spec: the pack's escalation spec (built from `pack` when not given; pass it to save the work).
        policy: the escalation policy wrapped around the assistant, stored on the record.

    Returns:
        The dialogue record with its outcome, and one slot check per gold slot.
    """
    scenario = job.scenario
    goal = scenario.goal
    spec = spec or EscalationSpec.from_pack(pack)
    # A dialogue that ended before the user turned to its goal is judged on what the user asked for.
    intent = goal.intent
    if goal.opens_with and not any(t.gold_intent == goal.intent and t.text for t in turns):
        intent = goal.opens_with
    own = EscalationRule(goal.escalation, goal.escalation_within) if intent == goal.intent else None
    due = spec.due(intent, escalation_events(spec, intent, turns), rule=own)
    bot_turns = [t for t in turns if t.speaker == "assistant"]
    # A bot that exposes intents is scored on them; the judge's readings count only for one that never does.
    routed_turn = next((t for t in reversed(bot_turns) if t.intent and t.intent_source != "judged"), None)
    routed_turn = routed_turn or next((t for t in reversed(bot_turns) if t.intent), None)
    routed = routed_turn.intent if routed_turn is not None else None
    exposed_slots = [t.slots for t in bot_turns if t.slots is not None]
    captured: dict[str, str] | None = None
    if exposed_slots:
        captured = {}
        for slots in exposed_slots:
            captured.update(slots)
    handoff_turn = next((i + 1 for i, t in enumerate(bot_turns) if t.handoff), None)
    escalated = handoff_turn is not None
    checks = check_slots(pack, scenario, captured)
    wrong = sum(c.status == "wrong" for c in checks)
    missing = sum(c.status == "missing" for c in checks)
    misrouted = routed is not None and routed != intent

    # A hand-off the intent needed anyway is the bot's success even when the user asked for it first.
    needed = (own or spec.rule(intent)).expected == "must"
    verdict = judge(
        due.expected,
        due.deadline,
        handoff_turn=handoff_turn,
        user_requested=user_requested_human,
        trigger=None if needed and due.trigger == "request" else due.trigger,
    )
    if end_reason == "user_error":
        outcome = Outcome.SIMULATOR_ERROR
    elif error is not None:
        outcome = Outcome.ASSISTANT_ERROR
    elif verdict == "missed":
        outcome = Outcome.MISSED_ESCALATION
    elif misrouted:
        outcome = Outcome.MISROUTED
    elif verdict == "late":
        outcome = Outcome.LATE_ESCALATION
    elif verdict == "over":
        outcome = Outcome.OVER_ESCALATION
    elif wrong or (missing and not escalated and end_reason == "user_done"):
        outcome = Outcome.SLOT_ERROR
    elif end_reason in ("user_gave_up", "user_abandoned"):
        outcome = Outcome.USER_GAVE_UP
    elif end_reason == "max_turns":
        outcome = Outcome.MAX_TURNS
    elif verdict == "on_request":
        outcome = Outcome.HANDED_OFF_ON_REQUEST
    else:
        outcome = Outcome.SUCCESS

    record = DialogueRecord(
        run_id=run_id,
        dialogue_id=job.dialogue_id(run_id),
        idx=job.idx,
        pair_id=job.pair_id(run_id),
        trial=job.trial,
        perturbation=job.variant.perturbation,
        intensity=job.variant.intensity,
        variant=job.variant.name,
        scenario_id=scenario.id,
        seed=scenario.seed,
        persona=scenario.persona.id,
        complexity=str(goal.complexity),
        walk=goal.walk,
        gold_intent=goal.intent,
        critical=goal.critical,
        gold_slots=dict(goal.slots),
        routed_intent=routed,
        routing_source="none" if routed_turn is None else (routed_turn.intent_source or "exposed"),
        misrouted=misrouted,
        expected_escalation=due.expected,
        escalation_within=goal.escalation_within,
        escalation_trigger=due.trigger,
        escalation_deadline=due.deadline,
        escalated=escalated,
        escalation_turn=handoff_turn,
        escalation_source=None if handoff_turn is None else bot_turns[handoff_turn - 1].handoff_source,
        escalated_by=None if handoff_turn is None else bot_turns[handoff_turn - 1].escalated_by,
        policy=policy,
        user_requested_human=user_requested_human,
        outcome=outcome,
        success=outcome is Outcome.SUCCESS,
        end_reason=end_reason,
        user_turns=sum(t.speaker == "user" and bool(t.text) for t in turns),
        assistant_turns=len(bot_turns),
        slot_errors=wrong + missing,
        error_type=error[0] if error else None,
        error_message=error[1] if error else None,
        sim_seconds=turns[-1].sim_time if turns else 0.0,
        transcript_sha256=transcript_digest(turns),
        simulator_fault=simulator_fault(goal, turns),
    )
    return record, checks
