"""Escalation policies: each rule fires when it should and only then, the wrappers, and the policy specs."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from botdrill.agents import Message, ReferenceAssistant, Reply
from botdrill.agents._adapters import Assistant, AssistantProtocolError, BatchAssistant
from botdrill.agents._judge import judge_handoff
from botdrill.policies import (
    BatchPolicyAssistant,
    Policy,
    PolicyAssistant,
    PolicyError,
    builtin_policies,
    load_policy,
    parse_policy,
    wrap_with_policy,
)
from botdrill.scenarios import BotdrillError, Pack, load_pack

_threads = itertools.count()


@pytest.fixture(scope="module")
def pack() -> Pack:
    return load_pack("banking")


@pytest.fixture(scope="module")
def bare() -> ReferenceAssistant:
    return ReferenceAssistant(escalation=False)


@pytest.fixture(scope="module")
def reference() -> ReferenceAssistant:
    return ReferenceAssistant()


@pytest.fixture
def thread_id() -> str:
    return f"policy-thread-{next(_threads)}"


# -- doubles ----------------------------------------------------------------------------------------

Script = Callable[[list[Message]], Reply]


def _scripted(*replies: Reply) -> Script:
    """Replies in order, one per call, whatever the user says."""
    queue = list(replies)
    return lambda messages: queue.pop(0)


class Recorder:
    """An async assistant that answers from a script and records every call."""

    name = "recorder"
    modelled_latency = False

    def __init__(self, script: Script) -> None:
        self.script = script
        self.calls: list[tuple[str, list[Message]]] = []
        self.forgotten: list[str] = []

    async def respond(self, messages: list[Message], *, thread_id: str) -> Reply:
        self.calls.append((thread_id, list(messages)))
        return self.script(messages)

    def forget(self, thread_id: str) -> None:
        self.forgotten.append(thread_id)


class BatchRecorder:
    """A batch assistant that answers each conversation from a script and records every batch."""

    name = "batch-recorder"
    modelled_latency = True

    def __init__(self, script: Script) -> None:
        self.script = script
        self.batches: list[list[str]] = []
        self.forgotten: list[str] = []

    def respond_batch(self, requests: Sequence[tuple[str, list[Message]]]) -> list[Reply]:
        self.batches.append([thread_id for thread_id, _ in requests])
        return [self.script(messages) for _, messages in requests]

    def forget(self, thread_id: str) -> None:
        self.forgotten.append(thread_id)


def _echo(messages: list[Message]) -> Reply:
    return Reply(text=f"you said: {messages[-1]['content']}", intent="check_balance", slots={"k": "v"})


class Chat:
    """One conversation through an async assistant, keeping the history the way a runner would."""

    def __init__(self, bot: Assistant, thread_id: str) -> None:
        self.bot, self.thread_id = bot, thread_id
        self.messages: list[Message] = []

    def say(self, *texts: str) -> Reply:
        for text in texts:
            self.messages.append({"role": "user", "content": text})
        reply = asyncio.run(self.bot.respond(list(self.messages), thread_id=self.thread_id))
        self.messages.append({"role": "assistant", "content": reply.text})
        return reply


def _policy(**fields: Any) -> Policy:
    return Policy(name="test", **fields)


def _wrap(inner: object, policy: Policy, pack: Pack | None = None) -> Any:
    wrapped = wrap_with_policy(inner, policy, pack)
    assert wrapped is not inner
    return wrapped


# -- pre-rules: crisis and request --------------------------------------------------------------------


def test_crisis_keyword_pre_empts_the_bot(thread_id: str) -> None:
    inner = Recorder(_echo)
    bot = _wrap(inner, _policy(crisis_keywords=True))
    chat = Chat(bot, thread_id)
    first = chat.say("what's my balance")
    assert first.handoff is None and first.escalated_by is None
    assert len(inner.calls) == 1
    reply = chat.say("My dad has COLLAPSED and we need an Ambulance")
    assert len(inner.calls) == 1  # the bot was not called
    assert reply.handoff is True
    assert reply.escalated_by == "crisis"
    assert reply.text == bot.policy.message and judge_handoff(reply.text)
    assert (reply.intent, reply.slots) == ("check_balance", {"k": "v"})  # the last the bot exposed
    assert reply.confidence is None
    assert reply.raw == {"matched": "collapsed"}


def test_crisis_reads_every_new_user_message_and_only_those(thread_id: str) -> None:
    inner = Recorder(_echo)
    bot = _wrap(inner, _policy(crisis_keywords=["end it all"]))
    # Two messages sent before the bot answered (a nudge after the first): both are read.
    reply = Chat(bot, thread_id).say("I want to end it all", "hello??")
    assert reply.escalated_by == "crisis" and inner.calls == []
    # Each message is read alone: a phrase split over two is not found.
    assert Chat(bot, f"{thread_id}-split").say("I want to end it", "all done?").escalated_by is None
    inner.calls.clear()
    # A phrase in a message the bot already answered is not read again.
    history: list[Message] = [
        {"role": "user", "content": "I want to end it all"},
        {"role": "assistant", "content": "..."},
        {"role": "user", "content": "what's my balance"},
    ]
    reply = asyncio.run(bot.respond(history, thread_id=f"{thread_id}-b"))
    assert reply.escalated_by is None and len(inner.calls) == 1


@pytest.mark.parametrize(
    ("text", "fires"),
    [
        ("I CAN'T BREATHE", True),
        ("i cant breathe", True),  # apostrophes are optional
        ("I can\u2019t breathe", True),  # curly apostrophe
        ("I can't   breathe properly", True),  # any run of spaces
        ("the ambulance-chasing lawyers", True),  # a hyphen is a word boundary
        ("ambulances", False),  # not on a word boundary
        ("what's my balance", False),
    ],
)
def test_crisis_matching_is_case_insensitive_on_word_boundaries(
    text: str, fires: bool, thread_id: str
) -> None:
    bot = _wrap(Recorder(_echo), _policy(crisis_keywords=["ambulance", "can't breathe"]))
    assert (Chat(bot, thread_id).say(text).escalated_by == "crisis") is fires


@pytest.mark.parametrize(
    ("keyword", "text", "fires"),
    [
        ("a.b", "a.b", True),
        ("a.b", "axb", False),  # '.' is a dot, not any character
        ("(x", "look (x here", True),  # an unbalanced parenthesis is text, not a regex error
        (".*", "anything at all", False),
        ("[help]", "h", False),
        ("[help]", "say [help] now", True),
        ("c++", "I code in c++ daily", True),
        ("a|b", "a", False),
    ],
)
def test_keywords_are_literal(keyword: str, text: str, fires: bool, thread_id: str) -> None:
    bot = _wrap(Recorder(_echo), _policy(crisis_keywords=[keyword]))
    assert (Chat(bot, thread_id).say(text).escalated_by == "crisis") is fires


def test_default_crisis_keywords_catch_generic_crisis_phrases(thread_id: str) -> None:
    bot = _wrap(Recorder(_echo), parse_policy("crisis"))
    for i, text in enumerate(
        [
            "I've been thinking about killing myself",
            "I just want to end it all",
            "I can't go on like this",
            "I want to hurt myself",
            "my husband has chest pains",
            "she took an overdose",
            "my partner hits me and controls the money",
        ]
    ):
        assert Chat(bot, f"{thread_id}-{i}").say(text).escalated_by == "crisis", text


def test_default_crisis_keywords_spare_ordinary_requests(pack: Pack) -> None:
    bot = _wrap(BatchRecorder(_echo), parse_policy("crisis"))
    texts = [o for i in pack.intents if not i.critical for o in [*i.openings, *i.restatements]]
    replies = bot.respond_batch(
        [(f"spare-{k}", [Message(role="user", content=t)]) for k, t in enumerate(texts)]
    )
    assert [t for t, r in zip(texts, replies, strict=True) if r.escalated_by] == []


def test_request_for_a_person_pre_empts_the_bot(pack: Pack, thread_id: str) -> None:
    inner = Recorder(_echo)
    bot = _wrap(inner, _policy(honour_requests=True))
    for i, text in enumerate(pack.lexicon.request_human):
        reply = Chat(bot, f"{thread_id}-{i}").say(text)
        assert (reply.handoff, reply.escalated_by) == (True, "request"), text
        assert reply.intent is None and reply.slots is None  # the bot exposed nothing yet
    assert inner.calls == []
    for text in ["someone stole my card", "I need to transfer money to my landlord", "what's my balance"]:
        assert Chat(bot, f"{thread_id}-x").say(text).escalated_by is None, text


def test_request_phrases_add_to_the_built_in_pattern(thread_id: str) -> None:
    bot = _wrap(Recorder(_echo), _policy(honour_requests=True, request_phrases=["escalate this"]))
    assert Chat(bot, thread_id).say("please ESCALATE this now").escalated_by == "request"
    assert Chat(bot, f"{thread_id}-b").say("get me a human").escalated_by == "request"


def test_requests_are_not_honoured_unless_the_rule_is_on(thread_id: str) -> None:
    inner = Recorder(_echo)
    bot = _wrap(inner, _policy(max_failures=5))
    reply = Chat(bot, thread_id).say("get me a human")
    assert reply.escalated_by is None and len(inner.calls) == 1


def test_crisis_is_checked_before_request(thread_id: str) -> None:
    bot = _wrap(Recorder(_echo), parse_policy("request+crisis"))
    assert Chat(bot, thread_id).say("get me a human, I'm going to hurt myself").escalated_by == "crisis"


# -- post-rules: critical, confidence, failures ---------------------------------------------------------


def test_critical_hands_off_when_the_bare_bot_routes_to_a_critical_intent(
    bare: ReferenceAssistant, pack: Pack, thread_id: str
) -> None:
    alone = bare.respond_batch([(thread_id, [Message(role="user", content="someone stole my card")])])[0]
    bare.forget(thread_id)
    assert (alone.intent, alone.handoff) == ("lost_or_stolen_card", False)
    bot = _wrap(bare, parse_policy("critical"), pack)
    assert isinstance(bot, BatchPolicyAssistant)
    reply = bot.respond_batch([(thread_id, [Message(role="user", content="someone stole my card")])])[0]
    assert (reply.intent, reply.handoff, reply.escalated_by) == ("lost_or_stolen_card", True, "critical")
    assert reply.text == bot.policy.message
    assert reply.confidence == alone.confidence and reply.slots == alone.slots
    assert reply.raw == {"inner_text": alone.text, "inner_raw": None}
    bot.forget(thread_id)


def test_critical_spares_other_intents(bare: ReferenceAssistant, pack: Pack, thread_id: str) -> None:
    bot = _wrap(bare, parse_policy("critical"), pack)
    reply = bot.respond_batch([(thread_id, [Message(role="user", content="What's my balance?")])])[0]
    assert (reply.intent, reply.handoff, reply.escalated_by) == ("check_balance", False, None)
    bot.forget(thread_id)


def test_a_bot_that_hands_off_itself_is_passed_through(
    reference: ReferenceAssistant, pack: Pack, thread_id: str
) -> None:
    bot = _wrap(reference, parse_policy("standard"), pack)
    reply = bot.respond_batch(
        [(thread_id, [Message(role="user", content="I need to report fraud on my account.")])]
    )[0]
    assert (reply.intent, reply.handoff, reply.escalated_by) == ("report_fraud", True, None)
    assert "fraud team" in reply.text  # the bot's own words
    bot.forget(thread_id)
    own = Reply(text="passing you to a colleague", intent="report_fraud", handoff=True)
    wrapped = _wrap(Recorder(lambda m: own), _policy(critical_intents=["report_fraud"], max_failures=1))
    assert Chat(wrapped, thread_id).say("fraud!") is own


def test_critical_intents_from_the_pack(pack: Pack) -> None:
    bot = _wrap(Recorder(_echo), parse_policy("critical"), pack)
    expected = {i.name for i in pack.intents if i.critical or i.escalation.expected == "must"}
    assert expected and bot._critical == expected


def test_critical_from_the_pack_needs_a_pack() -> None:
    with pytest.raises(PolicyError, match="no pack was given"):
        wrap_with_policy(Recorder(_echo), parse_policy("standard"))


def test_critical_intents_are_checked_against_the_pack(pack: Pack) -> None:
    with pytest.raises(PolicyError, match=r"does not have: fraud \(it has: "):
        wrap_with_policy(Recorder(_echo), parse_policy("critical:report_fraud,fraud"), pack)
    # Without a pack nothing is checked.
    assert isinstance(wrap_with_policy(Recorder(_echo), parse_policy("critical:fraud")), PolicyAssistant)


def _confident(*values: float | None) -> Script:
    return _scripted(
        *(Reply(text=f"reply {i}", intent="check_balance", confidence=v) for i, v in enumerate(values))
    )


@pytest.mark.parametrize(
    ("confidences", "turns", "fires_at"),
    [
        ([0.2, 0.3], 2, 2),
        ([0.2, None, 0.3], 2, 3),  # no confidence: neither counts nor breaks the run
        ([0.2, 0.9, 0.2, 0.4], 2, 4),  # a confident reply starts the count again
        ([0.2, 0.9, 0.2, 0.9], 2, None),
        ([0.5, 0.5, 0.5], 2, None),  # at the threshold is not below it
        ([0.1, 0.1, 0.1], 3, 3),
        ([0.1], 1, 1),
        ([None, None, None], 1, None),
    ],
)
def test_confidence_counts_unsure_replies_in_a_row(
    confidences: list[float | None], turns: int, fires_at: int | None, thread_id: str
) -> None:
    bot = _wrap(Recorder(_confident(*confidences)), _policy(min_confidence=0.5, low_confidence_turns=turns))
    chat = Chat(bot, thread_id)
    replies = [chat.say(f"message {i}") for i in range(len(confidences))]
    fired = [i + 1 for i, r in enumerate(replies) if r.escalated_by == "confidence"]
    assert fired == ([] if fires_at is None else [fires_at])
    if fires_at is not None:
        reply = replies[fires_at - 1]
        assert reply.handoff is True and reply.confidence == confidences[fires_at - 1]
        assert reply.raw == {"inner_text": f"reply {fires_at - 1}", "inner_raw": None}


def _texts(*texts: str) -> Script:
    return _scripted(*(Reply(text=t) for t in texts))


@pytest.mark.parametrize(
    ("texts", "limit", "fires_at"),
    [
        (["Sorry, I didn't understand that.", "How much?", "I\u2019m not sure what you mean."], 2, 3),
        (["Which card?", "Which card?"], 2, None),  # the first is not a repeat of anything
        (["Which card?", "Which card?", "Which card?"], 2, 3),
        (["Which card?", "  Which card? "], 1, 2),
        (["Which card?", "How much?", "Which card?"], 1, None),  # not the *previous* reply
        (["Could you REPHRASE that?"], 1, 1),
        (["All done.", "Anything else?", "Goodbye."], 1, None),
    ],
)
def test_failures_count_cues_and_repeated_replies(
    texts: list[str], limit: int, fires_at: int | None, thread_id: str
) -> None:
    bot = _wrap(Recorder(_texts(*texts)), _policy(max_failures=limit))
    chat = Chat(bot, thread_id)
    replies = [chat.say(f"message {i}") for i in range(len(texts))]
    fired = [i + 1 for i, r in enumerate(replies) if r.escalated_by == "failures"]
    assert fired[:1] == ([] if fires_at is None else [fires_at])


def test_failures_with_custom_cues(thread_id: str) -> None:
    bot = _wrap(
        Recorder(_texts("Huh?", "Sorry, I didn't understand that.")),
        _policy(max_failures=1, failure_cues=["huh"]),
    )
    assert Chat(bot, thread_id).say("x").escalated_by == "failures"


def test_failures_on_the_bare_bot_re_asking(bare: ReferenceAssistant, pack: Pack, thread_id: str) -> None:
    bot = _wrap(bare, parse_policy("failures:2"), pack)
    messages: list[Message] = []
    replies: list[Reply] = []
    for text in ["What's the postcode for my new address? I moved", "I don't know it", "I don't know it"]:
        messages.append({"role": "user", "content": text})
        replies.append(bot.respond_batch([(thread_id, list(messages))])[0])
        messages.append({"role": "assistant", "content": replies[-1].text})
    assert replies[0].intent == "update_address"
    # The bot has one way of asking for a postcode: the second and third asks repeat the first.
    assert [r.escalated_by for r in replies] == [None, None, "failures"]
    bot.forget(thread_id)


def test_post_rules_are_checked_in_order(thread_id: str) -> None:
    reply = Reply(text="I didn't understand", intent="report_fraud", confidence=0.1)
    policy = _policy(
        critical_intents=["report_fraud"], min_confidence=0.5, low_confidence_turns=1, max_failures=1
    )
    assert Chat(_wrap(Recorder(lambda m: reply), policy), thread_id).say("x").escalated_by == "critical"
    policy = _policy(min_confidence=0.5, low_confidence_turns=1, max_failures=1)
    assert Chat(_wrap(Recorder(lambda m: reply), policy), thread_id).say("x").escalated_by == "confidence"


def test_pre_empted_turns_do_not_reach_the_post_rules(thread_id: str) -> None:
    inner = Recorder(_texts("Which card?", "Which card?"))
    bot = _wrap(inner, _policy(max_failures=1, honour_requests=True))
    chat = Chat(bot, thread_id)
    assert chat.say("my card").escalated_by is None
    assert chat.say("a human please").escalated_by == "request"
    assert chat.say("my card again").escalated_by == "failures"  # the repeat is of the bot's last reply


# -- the wrappers -----------------------------------------------------------------------------------


def test_none_returns_the_inner_assistant_unwrapped(bare: ReferenceAssistant, pack: Pack) -> None:
    inner = Recorder(_echo)
    assert wrap_with_policy(inner, parse_policy("none"), pack) is inner
    assert wrap_with_policy(bare, builtin_policies()["none"], pack) is bare
    assert wrap_with_policy(inner, Policy(name="mine")) is inner  # no rule at all is the pass-through


def test_wrapper_kinds_names_and_latency(bare: ReferenceAssistant, pack: Pack) -> None:
    batch = wrap_with_policy(bare, parse_policy("standard"), pack)
    assert isinstance(batch, BatchPolicyAssistant) and isinstance(batch, BatchAssistant)
    assert batch.name == "reference-bare+standard"
    assert batch.modelled_latency is True
    single = wrap_with_policy(Recorder(_echo), parse_policy("crisis+failures:3"))
    assert isinstance(single, PolicyAssistant) and isinstance(single, Assistant)
    assert not isinstance(single, BatchAssistant)
    assert single.name == "recorder+crisis+failures:3"
    assert single.modelled_latency is False


def test_a_plain_function_is_adapted_first(thread_id: str) -> None:
    def respond(messages: list[dict[str, str]]) -> dict[str, Any]:
        return {"text": "sorry, I didn't understand", "confidence": 0.9}

    bot = wrap_with_policy(respond, parse_policy("failures:1"))
    assert isinstance(bot, PolicyAssistant)
    assert Chat(bot, thread_id).say("x").escalated_by == "failures"


def test_batch_preserves_order_and_calls_the_inner_only_for_the_rest() -> None:
    inner = BatchRecorder(_echo)
    bot = _wrap(inner, parse_policy("crisis+request"))
    texts = ["balance please", "get me a human", "my chest pain is bad", "pay my bill", "hello"]
    requests = [(f"b{i}", [Message(role="user", content=t)]) for i, t in enumerate(texts)]
    replies = bot.respond_batch(requests)
    assert inner.batches == [["b0", "b3", "b4"]]
    assert [r.escalated_by for r in replies] == [None, "request", "crisis", None, None]
    answered = [replies[i].text for i in (0, 3, 4)]
    assert answered == ["you said: balance please", "you said: pay my bill", "you said: hello"]


def test_batch_does_not_call_the_inner_when_every_request_is_pre_empted() -> None:
    inner = BatchRecorder(_echo)
    bot = _wrap(inner, parse_policy("request"))
    replies = bot.respond_batch(
        [(f"h{i}", [Message(role="user", content="get me a human")]) for i in range(3)]
    )
    assert inner.batches == []
    assert [r.escalated_by for r in replies] == ["request"] * 3
    assert bot.respond_batch([]) == [] and inner.batches == []


def test_batch_passes_a_bad_reply_on_for_the_runner_to_record() -> None:
    bad: Any = 42

    class Odd(BatchRecorder):
        def respond_batch(self, requests: Sequence[tuple[str, list[Message]]]) -> list[Reply]:
            return [bad, *super().respond_batch(requests[1:])]

    bot = _wrap(Odd(_echo), parse_policy("failures:1"))
    replies = bot.respond_batch([(f"o{i}", [Message(role="user", content="hi")]) for i in range(2)])
    assert replies[0] == 42 and replies[1].text == "you said: hi"


def test_batch_with_a_wrong_number_of_replies_is_a_protocol_error() -> None:
    class Short(BatchRecorder):
        def respond_batch(self, requests: Sequence[tuple[str, list[Message]]]) -> list[Reply]:
            return super().respond_batch(requests)[1:]

    bot = _wrap(Short(_echo), parse_policy("failures:1"))
    with pytest.raises(AssistantProtocolError, match="returned 1 replies for 2 conversations"):
        bot.respond_batch([(f"s{i}", [Message(role="user", content="hi")]) for i in range(2)])


def test_inner_exceptions_propagate_unchanged(thread_id: str) -> None:
    error = RuntimeError("the bot fell over")

    def boom(messages: list[Message]) -> Reply:
        raise error

    with pytest.raises(RuntimeError) as info:
        Chat(_wrap(Recorder(boom), parse_policy("failures:1")), thread_id).say("hi")
    assert info.value is error
    with pytest.raises(RuntimeError) as info:
        _wrap(BatchRecorder(boom), parse_policy("failures:1")).respond_batch(
            [("t", [Message(role="user", content="hi")])]
        )
    assert info.value is error


def test_batch_wrapper_answers_one_conversation_asynchronously(thread_id: str) -> None:
    inner = BatchRecorder(_echo)
    bot = _wrap(inner, parse_policy("request"))
    assert Chat(bot, thread_id).say("balance").text == "you said: balance"
    assert inner.batches == [[thread_id]]


def test_forget_clears_the_state_and_forwards(thread_id: str) -> None:
    inner = Recorder(_texts("I didn't understand", "I didn't understand", "I didn't understand"))
    bot = _wrap(inner, _policy(max_failures=2))
    chat = Chat(bot, thread_id)
    assert chat.say("x").escalated_by is None
    bot.forget(thread_id)
    assert inner.forgotten == [thread_id]
    assert thread_id not in bot._threads
    chat = Chat(bot, thread_id)
    assert chat.say("x").escalated_by is None  # the count started again
    assert chat.say("x").escalated_by == "failures"


def test_forget_works_for_an_inner_without_forget(thread_id: str) -> None:
    class NoForget:
        name = "plain"

        async def respond(self, messages: list[Message], *, thread_id: str) -> Reply:
            return Reply(text="I didn't understand")

    bot = _wrap(NoForget(), _policy(max_failures=2))
    Chat(bot, thread_id).say("x")
    bot.forget(thread_id)
    bot.forget("never-seen")
    assert bot._threads == {}


def test_forget_on_the_batch_wrapper_forwards(thread_id: str) -> None:
    inner = BatchRecorder(_echo)
    bot = _wrap(inner, parse_policy("request"))
    bot.respond_batch([(thread_id, [Message(role="user", content="hi")])])
    bot.forget(thread_id)
    assert inner.forgotten == [thread_id] and bot._threads == {}


def test_a_retried_turn_keeps_the_state_and_a_reused_thread_id_starts_afresh(thread_id: str) -> None:
    down = [False, True]  # the bot fails on the second call only

    def flaky(messages: list[Message]) -> Reply:
        if down.pop(0) if down else False:
            raise ConnectionError("bot down")
        return Reply(text="I didn't understand")

    bot = _wrap(Recorder(flaky), _policy(max_failures=2))
    history: list[Message] = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "I didn't understand"},
        {"role": "user", "content": "b"},
    ]
    assert asyncio.run(bot.respond(history[:1], thread_id=thread_id)).escalated_by is None
    with pytest.raises(ConnectionError):
        asyncio.run(bot.respond(history, thread_id=thread_id))
    # The runner retries the same turn: the failure counted on the first turn still counts.
    assert asyncio.run(bot.respond(history, thread_id=thread_id)).escalated_by == "failures"
    # Fewer user messages than last time: a new conversation under the same id, counted afresh.
    assert asyncio.run(bot.respond(history[:1], thread_id=thread_id)).escalated_by is None


# -- the reference bots under policies ------------------------------------------------------------


def test_bare_bot_under_standard_hands_off_as_the_rules_say(
    bare: ReferenceAssistant, pack: Pack, thread_id: str
) -> None:
    bot = _wrap(bare, parse_policy("standard"), pack)
    cases = {
        "get me a human": "request",
        "someone stole my card": "critical",
        "I can't go on like this, I want to end it all": "crisis",
        "What's my balance?": None,
    }
    requests = [(f"{thread_id}-{i}", [Message(role="user", content=t)]) for i, t in enumerate(cases)]
    replies = bot.respond_batch(requests)
    assert [r.escalated_by for r in replies] == list(cases.values())
    assert [r.handoff for r in replies] == [True, True, True, False]
    for thread, _ in requests:
        bot.forget(thread)


# -- specs ------------------------------------------------------------------------------------------


def test_builtin_policies() -> None:
    policies = builtin_policies()
    assert list(policies) == ["none", "critical", "standard", "cautious"]
    assert policies["none"].rules == ()
    assert policies["critical"].rules == ("critical",) and policies["critical"].critical_intents == "pack"
    standard = policies["standard"]
    assert standard.rules == ("crisis", "request", "critical", "failures")
    assert standard.max_failures == 2 and standard.honour_requests and standard.crisis_keywords
    cautious = policies["cautious"]
    assert cautious.rules == ("crisis", "request", "critical", "confidence", "failures")
    assert (cautious.min_confidence, cautious.low_confidence_turns) == (0.5, 2)
    for name, policy in policies.items():
        assert policy.name == name
        assert parse_policy(name) == policy
        assert parse_policy(f"  {name.upper()} ") == policy
        assert judge_handoff(policy.message)


@pytest.mark.parametrize(
    ("spec", "name", "fields"),
    [
        (
            "critical+failures:2+crisis+request+confidence:0.5x3",
            "critical+failures:2+crisis+request+confidence:0.5x3",
            {
                "critical_intents": "pack",
                "max_failures": 2,
                "honour_requests": True,
                "min_confidence": 0.5,
                "low_confidence_turns": 3,
            },
        ),
        (
            " Critical + Confidence:0.40 ",
            "critical+confidence:0.4",
            {"min_confidence": 0.4, "low_confidence_turns": 2},
        ),
        ("confidence", "confidence", {"min_confidence": 0.5}),
        ("confidence:.25x1", "confidence:0.25x1", {"min_confidence": 0.25, "low_confidence_turns": 1}),
        ("confidence:1", "confidence:1", {"min_confidence": 1.0}),
        ("failures", "failures", {"max_failures": 2}),
        ("failures:07", "failures:7", {"max_failures": 7}),
        (
            "critical:report_fraud,bereavement",
            "critical:report_fraud,bereavement",
            {"critical_intents": ["report_fraud", "bereavement"]},
        ),
        ("standard+confidence:0.4", "standard+confidence:0.4", {"min_confidence": 0.4, "max_failures": 2}),
        ("request", "request", {"honour_requests": True, "crisis_keywords": None}),
    ],
)
def test_inline_chains(spec: str, name: str, fields: dict[str, Any]) -> None:
    policy = parse_policy(spec)
    assert policy.name == name
    for key, value in fields.items():
        assert getattr(policy, key) == value, key
    assert parse_policy(policy.name) == policy  # the name is a spec for the same policy


def test_inline_crisis_uses_the_default_keywords() -> None:
    assert parse_policy("crisis").crisis_keywords == builtin_policies()["standard"].crisis_keywords


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("critical+bogus", "unknown rule 'bogus'; valid rules: confidence[:T[xN]], crisis, critical"),
        ("strict", "built-in policies: cautious, critical, none, standard"),
        ("failures:0", "rule 'failures' takes a whole number"),
        ("failures:two", "got 'two'"),
        ("failures:-1", "rule 'failures'"),
        ("confidence:1.5", "rule 'confidence' takes a threshold from 0 to 1"),
        ("confidence:high", "got 'high'"),
        ("confidence:0.5x0", "rule 'confidence'"),
        ("confidence:nan", "rule 'confidence'"),
        ("crisis:self-harm", "rule 'crisis' takes no parameter"),
        ("request:yes", "rule 'request' takes no parameter"),
        ("critical:Report Fraud", "rule 'critical' takes intent names"),
        ("critical:", "rule 'critical' takes intent names"),
        ("none:1", "the built-in policy 'none' takes no parameter"),
        ("critical++crisis", "empty rule"),
        ("failures:2+failures:3", "rule 'failures' is set twice"),
        ("standard+crisis", "rule 'crisis' is set twice ('standard' and 'crisis')"),
        ("", "an empty policy spec"),
        ("my_policy.json", "a policy file's name ends in .yaml or .yml"),
    ],
)
def test_spec_errors(spec: str, needle: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(spec)
    assert needle in str(info.value)
    assert isinstance(info.value, BotdrillError) and info.value.code == "policy_invalid"


_GOOD_FILE = """\
# A cautious policy for the fraud desk.
critical_intents: [report_fraud, account_takeover]
min_confidence: 0.6
low_confidence_turns: 3
crisis_keywords: true
honour_requests: true
request_phrases: ["escalate"]
message: "Thanks, I'm putting you through to our fraud team now."
"""


def test_yaml_file(tmp_path: Path) -> None:
    file = tmp_path / "fraud-desk.yaml"
    file.write_text(_GOOD_FILE, encoding="utf-8")
    policy = parse_policy(str(file))
    assert policy.name == "fraud-desk"  # from the file's name
    assert policy.critical_intents == ["report_fraud", "account_takeover"]
    assert (policy.min_confidence, policy.low_confidence_turns) == (0.6, 3)
    assert policy.crisis_keywords == builtin_policies()["standard"].crisis_keywords
    assert policy.rules == ("crisis", "request", "critical", "confidence")
    assert load_policy(file) == policy
    assert parse_policy("fraud-desk.yaml", base_dir=tmp_path) == policy
    named = tmp_path / "other.yml"
    named.write_text("name: mine\nmax_failures: 1\n", encoding="utf-8")
    assert parse_policy("other.yml", base_dir=str(tmp_path)).name == "mine"


@pytest.mark.parametrize(
    ("text", "line", "field", "needle"),
    [
        ("max_failures: 2\nmin_confidance: 0.5\n", 2, "min_confidance", "Extra inputs are not permitted"),
        ("max_failures: 2\nmin_confidence: 1.5\n", 2, "min_confidence", "less than or equal to 1"),
        ("max_failures: two\n", 1, "max_failures", "valid integer"),
        ("crisis_keywords:\n  - suicide\n  - ''\n", 3, "crisis_keywords.1", "must not be blank"),
        ("critical_intents: all\n", 1, "critical_intents", "'pack'"),
        ("critical_intents: []\n", 1, "critical_intents", "empty list"),
        ("critical_intents: 5\n", 1, "critical_intents", ""),
        ("request_phrases: [operator]\n", 1, "request_phrases", "honour_requests: true"),
        ("max_failures: 1\nmessage: Please hold.\n", 2, "message", "does not read as a hand-off"),
        ("max_failures: 1\nmax_failures: 2\n", 2, "max_failures", "duplicate key"),
        ("- max_failures\n", 1, None, "must be a mapping"),
        ("max_failures: [1\n", 2, None, "not valid YAML"),
    ],
)
def test_yaml_errors_name_file_line_and_field(
    tmp_path: Path, text: str, line: int, field: str | None, needle: str
) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        parse_policy(str(file))
    error = info.value
    assert (error.path, error.line, error.field) == (str(file), line, field)
    assert needle in error.reason
    assert str(error).startswith(f"{file}:{line}: " + (f"{field}: " if field else ""))


def test_yaml_file_missing_or_empty(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="no such policy file"):
        parse_policy(str(tmp_path / "absent.yaml"))
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="the file is empty"):
        load_policy(empty)


def test_policy_model_forbids_unknown_fields_and_is_frozen() -> None:
    with pytest.raises(ValueError, match="Extra inputs"):
        Policy.model_validate({"name": "x", "max_failure": 2})
    policy = _policy(max_failures=2)
    with pytest.raises(ValueError, match="frozen"):
        policy.max_failures = 3
