"""The bare reference bot (`reference-bare`): the same bot without escalation rules, which never hands off.

Also the reply fields escalation policies read (`confidence`, `escalated_by`), as `coerce_reply` takes them.
"""

from __future__ import annotations

from importlib.resources import files

import numpy as np
import pytest
import yaml

from botdrill.agents import Message, ReferenceAssistant, Reply, _reference
from botdrill.agents._adapters import AssistantProtocolError, coerce_reply, load_target
from botdrill.agents._judge import judge_handoff
from botdrill.scenarios import Pack

_CONFIG = yaml.safe_load(files("botdrill.agents").joinpath("data/reference_dialogue.yaml").read_text("utf-8"))

VARIED = [
    "get me a human",
    "someone stole my card",
    "I need to report fraud on my account.",
    "My account's been hacked.",
    "blorp zzz",
    "What's my balance?",
    "I want to send money",
    "can I speak to a real person",
    "I'm struggling and I can't cope with my debts",
    "my husband died last week and I need to sort his account",
    "there's a payment I don't recognise",
    "I want to activate my new card",
    "what's the weather like in Paris tomorrow?",
]
FOLLOW_UPS = ["I don't know", "qwerty flib", "4410", "put me through to someone please", "£45", "yes"]


@pytest.fixture(scope="module")
def bare() -> ReferenceAssistant:
    return ReferenceAssistant(escalation=False)


class Chat:
    """One conversation with a bot, keeping the history the way a runner would."""

    def __init__(self, bot: ReferenceAssistant, thread_id: str) -> None:
        self.bot, self.thread_id = bot, thread_id
        self.messages: list[Message] = []

    def say(self, text: str) -> Reply:
        self.messages.append({"role": "user", "content": text})
        reply = self.bot.respond_batch([(self.thread_id, list(self.messages))])[0]
        self.messages.append({"role": "assistant", "content": reply.text})
        return reply


def _drive(bot: ReferenceAssistant, prefix: str) -> list[list[Reply]]:
    """Every varied opening, then the same follow-ups, as one cohort answered batch by batch."""
    histories: list[list[Message]] = [[] for _ in VARIED]
    replies: list[list[Reply]] = [[] for _ in VARIED]
    for turn in range(len(FOLLOW_UPS) + 1):
        for k, opening in enumerate(VARIED):
            histories[k].append({"role": "user", "content": opening if turn == 0 else FOLLOW_UPS[turn - 1]})
        batch = bot.respond_batch([(f"{prefix}-{k}", list(h)) for k, h in enumerate(histories)])
        for k, reply in enumerate(batch):
            histories[k].append({"role": "assistant", "content": reply.text})
            replies[k].append(reply)
    for k in range(len(VARIED)):
        bot.forget(f"{prefix}-{k}")
    return replies


def test_bare_bot_never_hands_off_while_the_reference_does(
    bare: ReferenceAssistant, bot: ReferenceAssistant
) -> None:
    bare_replies = _drive(bare, "bare")
    assert all(r.handoff is False for dialogue in bare_replies for r in dialogue)
    assert not any(judge_handoff(r.text) for dialogue in bare_replies for r in dialogue)
    reference_replies = _drive(bot, "reference")
    first = [dialogue[0] for dialogue in reference_replies]
    assert first[VARIED.index("get me a human")].handoff is True
    assert any(r.handoff for r in reference_replies[VARIED.index("someone stole my card")])
    assert sum(any(r.handoff for r in d) for d in reference_replies) >= 6


def test_name_and_loading(
    bare: ReferenceAssistant, bot: ReferenceAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert bare.name == "reference-bare"
    assert ReferenceAssistant.name == "reference" and bot.name == "reference"
    built: list[bool] = []

    class Stub:  # stands in for the bot, so loading it does not train a classifier again
        def __init__(self, *, escalation: bool = True) -> None:
            built.append(escalation)

    monkeypatch.setattr(_reference, "ReferenceAssistant", Stub)
    assert isinstance(load_target("reference-bare"), Stub)
    assert isinstance(load_target("reference"), Stub)
    assert built == [False, True]


@pytest.mark.parametrize("text", ["get me a human", "I'd like to speak to a member of staff"])
def test_a_request_for_a_person_is_declined_politely(bare: ReferenceAssistant, text: str) -> None:
    chat = Chat(bare, f"decline-{text}")
    chat.say("I want to send some money")
    reply = chat.say(text)
    assert reply.handoff is False
    assert reply.text == _CONFIG["handoff_declined"]
    assert not judge_handoff(reply.text)
    assert reply.intent == "transfer_money"  # the task is not dropped
    assert chat.say("£50").slots == {"amount": "£50"}


def test_critical_intents_collect_their_details_then_complete(bare: ReferenceAssistant) -> None:
    chat = Chat(bare, "critical-card")
    first = chat.say("someone stole my card")
    assert (first.intent, first.handoff) == ("lost_or_stolen_card", False)
    assert first.text in _CONFIG["prompts"]["card_last4"]
    done = chat.say("4410")
    assert done.handoff is False and done.slots == {"card_last4": "4410"}
    assert done.text.startswith("Thank you. I've cancelled the card ending 4410")
    fraud = Chat(bare, "critical-fraud").say("I need to report fraud on my account.")
    assert (fraud.intent, fraud.handoff) == ("report_fraud", False)
    assert fraud.text == _CONFIG["completed_without_handoff"]["report_fraud"]


def test_completion_texts_of_critical_intents_do_not_read_as_hand_offs(pack: Pack) -> None:
    texts: dict[str, str] = _CONFIG["completed_without_handoff"]
    assert set(texts) == set(_CONFIG["escalate_intents"])
    assert set(texts) <= {i.name for i in pack.intents if i.critical}
    for intent, text in texts.items():
        assert not judge_handoff(text), intent
        assert not any(w in text.lower() for w in ("transfer", "connect", "colleague", "team")), intent
        assert "anything else" in text.lower()  # reads as done to the simulated user


def test_low_confidence_keeps_asking(bare: ReferenceAssistant) -> None:
    chat = Chat(bare, "unsure")
    replies = [chat.say(t) for t in ["blorp zzz", "qwerty flib", "zzz", "flarp"]]
    assert all(r.handoff is False and r.text in _CONFIG["not_understood"] for r in replies)
    assert all(r.confidence is not None and r.confidence < _CONFIG["confidence_threshold"] for r in replies)


def test_repeated_re_asks_keep_re_asking(bare: ReferenceAssistant) -> None:
    chat = Chat(bare, "reask")
    chat.say("I want to activate my new card")
    replies = [chat.say("I don't have it with me") for _ in range(_CONFIG["reask_handoff_after"] + 2)]
    assert all(r.handoff is False and r.text in _CONFIG["prompts"]["card_last4"] for r in replies)
    assert chat.say("it's 1234").text.startswith("Just to confirm:")


def test_common_intents_are_served_as_by_the_reference(
    bare: ReferenceAssistant, bot: ReferenceAssistant
) -> None:
    script = ["I want to send money", "£50", "my landlord", "yes", "What's my balance?"]
    a, b = Chat(bare, "same"), Chat(bot, "same")
    for text in script:
        assert a.say(text) == b.say(text)


# -- the reply fields policies read -----------------------------------------------------------------


def test_coerce_reply_takes_confidence_and_escalated_by() -> None:
    reply = coerce_reply({"text": "hi", "confidence": 0.25, "escalated_by": "critical", "trace": [1]})
    assert (reply.confidence, reply.escalated_by, reply.raw) == (0.25, "critical", {"trace": [1]})
    assert coerce_reply({"text": "hi", "confidence": 1}).confidence == 1.0
    assert coerce_reply({"text": "hi", "confidence": np.float32(0.5)}).confidence == 0.5
    assert coerce_reply({"text": "hi", "confidence": None}).confidence is None
    assert Reply(text="hi").confidence is None and Reply(text="hi").escalated_by is None


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        (
            {"text": "hi", "confidence": 1.5},
            "reply field 'confidence': Input should be less than or equal to 1",
        ),
        ({"text": "hi", "confidence": -0.1}, "reply field 'confidence'"),
        ({"text": "hi", "confidence": "high"}, "reply field 'confidence': Input should be a valid number"),
        ({"text": "hi", "confidence": "0.5"}, "reply field 'confidence'"),  # a number, not text
        ({"text": "hi", "confidence": True}, "reply field 'confidence'"),
        ({"text": "hi", "confidence": float("nan")}, "reply field 'confidence'"),
        ({"text": "hi", "escalated_by": 3}, "reply field 'escalated_by'"),
    ],
)
def test_coerce_reply_rejects_bad_confidence_and_rule(value: object, needle: str) -> None:
    with pytest.raises(AssistantProtocolError) as info:
        coerce_reply(value)
    assert needle in str(info.value)
