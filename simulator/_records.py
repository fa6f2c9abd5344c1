"""What a finished dialogue becomes: a scored record, its turns and its slot checks."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

from botdrill.agents import Edit, GoldSlot


class Outcome(StrEnum):
    """How a dialogue ended, judged against its gold labels; the first that applies, in this order."""

    SIMULATOR_ERROR = "simulator_error"
    """The simulated user failed (an LLM user's model could not be reached): not scored."""
    ASSISTANT_ERROR = "assistant_error"
    """The assistant raised, timed out or answered something that is not a reply."""
    MISSED_ESCALATION = "missed_escalation"
    """A person had to take over and never did."""
    MISROUTED = "misrouted"
    """The assistant routed to another intent than the user's."""
    LATE_ESCALATION = "late_escalation"
    """A person took over, but after more assistant turns than the escalation spec allows."""
    OVER_ESCALATION = "over_escalation"
    """The assistant handed over an intent it should have served, without being asked to."""
    SLOT_ERROR = "slot_error"
    """A captured slot value was wrong, or one was missing when the assistant claimed to be done."""
    USER_GAVE_UP = "user_gave_up"
    """The user ran out of patience and left, or left without a word."""
    MAX_TURNS = "max_turns"
    """The dialogue hit the turn limit without an end."""
    HANDED_OFF_ON_REQUEST = "handed_off_on_request"
    """The user asked for a person and got one: not a failure of the bot, not a success either."""
    SUCCESS = "success"
    """Routed right, slots right, escalated when and only when it should have."""


EndReason = Literal[
    "user_done", "user_gave_up", "user_abandoned", "handoff", "max_turns", "assistant_error", "user_error"
]
SlotStatus = Literal["correct", "wrong", "missing", "not_exposed"]


class TurnRecord(BaseModel):
    """One message of a stored transcript."""

    model_config = ConfigDict(extra="forbid")

    turn_idx: int
    """0-based position in the dialogue (user and assistant messages alternate)."""
    speaker: Literal["user", "assistant"]
    """Who sent it."""
    text: str
    """The message."""
    sim_time: float
    """Simulated seconds since the dialogue started, when the message was sent."""
    gold_intent: str | None = None
    """User turns: the intent the user is pursuing."""
    gold_acts: list[str] | None = None
    """User turns: gold dialogue acts."""
    gold_slots: list[GoldSlot] | None = None
    """User turns: gold slot values with character spans into `text`."""
    part: int | None = None
    """User turns: position of this message in its turn, from 0 (a turn sent as fragments has several)."""
    parts: int | None = None
    """User turns: how many messages its turn was sent as."""
    edits: list[Edit] | None = None
    """User turns: the perturbations' edits, with spans into `text`."""
    intent: str | None = None
    """Assistant turns: the intent it exposed, if any."""
    slots: dict[str, str] | None = None
    """Assistant turns: the slots it exposed, if any."""
    handoff: bool | None = None
    """Assistant turns: whether it handed off (exposed or judged)."""
    handoff_source: Literal["exposed", "judged", "policy"] | None = None
    """Assistant turns: where `handoff` came from: the bot's own flag, a judge of its words, or the
    escalation policy wrapped around the bot."""
    escalated_by: str | None = None
    """Assistant turns: the policy rule that handed over (`critical`, `crisis`, ...), if a policy did."""
    confidence: float | None = None
    """Assistant turns: the confidence the bot exposed in its routed intent, if any."""
    raw: str | None = None
    """Assistant turns: anything else the assistant returned, as JSON text (its repr if not JSON). User
    turns of an LLM user: its plan, structured answer, control signals and the check's findings."""
    latency_ms: float | None = None
    """Assistant turns: wall-clock time the target took to answer."""
    error_type: str | None = None
    """Turns that failed (the assistant's reply, or an LLM user's message): the error's type; `text` is
    then empty."""
    intent_source: Literal["exposed", "judged"] | None = None
    """Assistant turns with an `intent`: the bot's own, or inferred from its words by the judge."""
    judged_by: str | None = None
    """Assistant turns: who inferred the judged labels (`rules`, or `llm:<model>` for an LLM judge)."""
    user_fault: str | None = None
    """User turns: the simulator fault the LLM user's consistency check found (`invented_value`,
    `left_goal`)."""


class SlotCheck(BaseModel):
    """One gold slot compared with what the assistant captured."""

    model_config = ConfigDict(extra="forbid")

    slot: str
    expected: str
    """Canonical gold value."""
    captured: str | None
    """What the assistant exposed, as it exposed it."""
    captured_normalized: str | None
    """`captured` in canonical form."""
    status: SlotStatus
    """`not_exposed` when the assistant exposes no slots at all, so nothing can be said."""


class DialogueRecord(BaseModel):
    """A finished, scored dialogue: one row of the `dialogues` table."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    dialogue_id: str
    """`<pair_id>-<variant>`, stable across resumes."""
    idx: int
    """Position in the run: (scenario index x variants + variant number) x trials + trial."""
    pair_id: str
    """`<run_id>-<scenario index>[-t<trial>]`: shared by the clean run of a scenario and its perturbed runs
    in one trial."""
    trial: int
    """Which repetition of the scenario and variant (`--trials`), from 0."""
    perturbation: str
    """`none` for the clean run, else the perturbation names (`typo`, `filler+casing`)."""
    intensity: int
    """The perturbation's intensity 0-3 (the highest in a chain)."""
    variant: str
    """The variant as written, with intensities (`typo:2`)."""
    scenario_id: str
    seed: int
    """The dialogue's own seed."""
    persona: str
    complexity: str
    """`simple`, `turn_into`, `two_intents` or `correction` (see `botdrill.scenarios.Complexity`)."""
    walk: list[str]
    """The intents in the order the user raised them (two for `turn_into` and `two_intents`)."""
    gold_intent: str
    critical: bool
    gold_slots: dict[str, str]
    routed_intent: str | None
    """Last intent the assistant exposed."""
    routing_source: Literal["exposed", "judged", "none"]
    """Where `routed_intent` came from: the bot, the judge of its words, or nowhere."""
    misrouted: bool
    expected_escalation: Literal["must", "never", "may"]
    """What the dialogue called for: `must` when the intent or a trigger made a hand-off due."""
    escalation_within: int | None
    """The intent's own window in assistant turns (from the pack)."""
    escalation_trigger: Literal["intent", "request", "failure", "crisis"] | None
    """For `must`: the reason with the earliest deadline."""
    escalation_deadline: int | None
    """For `must`: the assistant turn by which the hand-off had to come."""
    escalated: bool
    escalation_turn: int | None
    """1-based assistant turn of the hand-off."""
    escalation_source: Literal["exposed", "judged", "policy"] | None
    """Whether the hand-off was exposed by the bot, inferred from its words, or made by the policy."""
    escalated_by: str | None
    """The policy rule that handed over, when the policy did."""
    policy: str
    """The escalation policy wrapped around the assistant (`none` for the bare assistant)."""
    user_requested_human: bool
    outcome: Outcome
    success: bool
    """`outcome == 'success'`, for `avg(success::int)`."""
    end_reason: EndReason
    user_turns: int
    assistant_turns: int
    slot_errors: int
    error_type: str | None
    error_message: str | None
    sim_seconds: float
    """Simulated duration of the dialogue."""
    transcript_sha256: str
    """Digest of the transcript's texts, to compare runs for determinism at a glance."""
    simulator_fault: str | None = None
    """Why the simulated user, not the assistant, is to blame (`left_goal`, `wrong_value`,
    `invented_value`, `uncorrected_mistake`, `ended_early`, `user_error`), or None. Such dialogues are left
    out of the assistant's scores."""
    llm_calls: int = 0
    """LLM requests sent for this dialogue (user, assistant and judge; retries included; 0 in a replay)."""
    llm_cached: int = 0
    """LLM results served from the record/replay store instead."""
    llm_prompt_tokens: int = 0
    llm_completion_tokens: int = 0
    """Tokens of every LLM result of the dialogue, recorded ones included."""
    llm_cost_usd: float | None = None
    """What those tokens cost by the configured price tables (`None` without one)."""
