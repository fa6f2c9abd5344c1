"""The rule judge: hand-offs by the words, and intents only where a reply clearly names one of the pack's.

Its precision is measured on real replies of the reference bot, which exposes the intent it routed to:
simulated users drive it through sampled scenarios, and every reply the judge labels is checked against
that intent.
"""

from __future__ import annotations

import asyncio
import doctest
from pathlib import Path

import pytest

from botdrill.agents import AgendaUser, Message, ReferenceAssistant
from botdrill.agents import _judge as judge_module
from botdrill.agents._adapters import TargetError
from botdrill.agents._judge import Judge, Judgement, RuleJudge, judge_handoff
from botdrill.agents._llm_judge import JudgeConfigError, LLMJudge, load_judge
from botdrill.scenarios import Pack, load_pack, sample_scenarios


@pytest.fixture(scope="module")
def rules(pack: Pack) -> RuleJudge:
    return RuleJudge(pack)


@pytest.fixture(scope="module")
def telecom() -> RuleJudge:
    return RuleJudge(load_pack("telecom"))


def replies_of(
    bot: ReferenceAssistant, pack: Pack, user: AgendaUser, *, n: int, seed: int
) -> list[tuple[str, str | None]]:
    """Every reply of `bot` to simulated users of `n` sampled scenarios, with the intent it routed to."""
    out: list[tuple[str, str | None]] = []
    for scenario in sample_scenarios(pack, n, seed=seed):
        agenda = user.start(scenario)
        thread = f"judge-{seed}-{scenario.index}"
        conversation: list[Message] = []
        text: str | None = None
        for _ in range(12):
            turn = user.next_turn(agenda, text)
            if turn.ends_dialogue:
                break
            conversation.append({"role": "user", "content": turn.text})
            reply = bot.respond_batch([(thread, list(conversation))])[0]
            conversation.append({"role": "assistant", "content": reply.text})
            out.append((reply.text, reply.intent))
            text = reply.text
            if reply.handoff:
                break
        bot.forget(thread)
    return out


@pytest.mark.parametrize("escalation", [True, False], ids=["reference", "reference-bare"])
def test_intents_judged_on_the_reference_bot_are_its_routed_intents(
    pack: Pack, user: AgendaUser, rules: RuleJudge, escalation: bool, request: pytest.FixtureRequest
) -> None:
    bot = request.getfixturevalue("bot") if escalation else ReferenceAssistant(escalation=False)
    replies = replies_of(bot, pack, user, n=150, seed=11)
    labelled = [(text, routed, rules.intent(text)) for text, routed in replies]
    judged = [(text, routed, got) for text, routed, got in labelled if got is not None]
    wrong = [(text, routed, got) for text, routed, got in judged if got != routed]
    routed = [r for _, r, _ in labelled if r is not None]
    assert len(replies) >= 300
    precision = 1 - len(wrong) / len(judged)
    coverage = (len(judged) - len(wrong)) / len(routed)
    assert precision >= 0.97, wrong[:10]
    # Most of the bot's replies ("How much was it for?") name no intent; those that do are read.
    assert coverage >= 0.1, coverage
    assert len({got for _, _, got in judged}) >= 6


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        (
            "Your current account balance is £1,284.16. Is there anything else I can help with?",
            "check_balance",
        ),
        ("I've sent a PIN reset link for the card ending 4410 to your app.", "change_pin"),
        ("I'm transferring you to our fraud team right now, they'll secure your account.", "report_fraud"),
        ("I'm very sorry for your loss. I'm connecting you with our bereavement team.", "bereavement"),
        ("Which bill would you like to pay?", "pay_bill"),
        ("Happy to help you check your balance.", "check_balance"),
        ("Here are your recent transactions.", "recent_transactions"),
        ("Your address has been updated to postcode LS1 4QW.", "update_address"),
        ("Our Leeds branch is open 9am to 5pm, Monday to Saturday.", "branch_hours"),
        ("I'm sorry your card was lost or stolen; let's sort that out.", "lost_or_stolen_card"),
    ],
)
def test_a_reply_that_names_an_intent(rules: RuleJudge, text: str, intent: str) -> None:
    assert rules.intent(text) == intent


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Could you give me the last four digits of the card?",  # several intents need a card
        "How much was it for?",
        "Sorry, what should I change?",  # "change" is said about several intents
        "Let me check that for you.",
        "Could you put it another way?",  # one distinctive word ("another") is not enough
        "I've updated your details.",
        "I'm transferring you to one of my colleagues now, please hold on.",  # not `transfer_money`
        "I can transfer you to the right team.",
        "Is this about your balance, or a bill you want to pay?",  # two intents named: a tie
        "Do you want to check your balance or pay your bill?",
        "Would you like to reset your PIN or update your address?",
    ],
)
def test_a_reply_that_names_no_intent_or_several_is_none(rules: RuleJudge, text: str) -> None:
    assert rules.intent(text) is None


def test_the_rule_is_derived_from_the_pack(telecom: RuleJudge, rules: RuleJudge) -> None:
    assert telecom.intent("Your PAC code is ABC123, valid for 30 days.") == "port_number"
    assert telecom.intent("I've raised a dispute and you'll get a refund.") == "dispute_charge"
    assert telecom.intent("Roaming charges apply when you're abroad.") == "roaming_charges"
    assert telecom.intent("Your bill this month is £40.") is None  # "bill": checked and disputed alike
    assert rules.intent("Your PAC code is ABC123.") is None  # not a banking intent


@pytest.mark.asyncio
async def test_judge_gives_the_hand_off_and_who_judged(rules: RuleJudge) -> None:
    handoff = await rules.judge("I'm transferring you to our fraud team now.", [])
    assert handoff == Judgement(intent="report_fraud", handoff=True, by="rules")
    plain = await rules.judge("How much was it for?", [{"role": "user", "content": "my card was stolen"}])
    assert plain == Judgement(intent=None, handoff=False, by="rules")
    assert judge_handoff("Let me connect you with a colleague who can help.")
    await rules.aclose()
    assert isinstance(rules, Judge)
    with pytest.raises(AttributeError):
        handoff.intent = "bereavement"  # type: ignore[misc]


def test_the_module_examples_hold() -> None:
    # The examples in the docstrings are part of the contract (`judge_handoff`'s callers read them).
    result = doctest.testmod(judge_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 3 and result.failed == 0


def test_load_judge(pack: Pack, tmp_path: Path) -> None:
    assert isinstance(load_judge("rules", pack), RuleJudge)
    assert isinstance(load_judge(" rules ", pack), RuleJudge)
    config = tmp_path / "judge.yaml"
    config.write_text("llm:\n  base_url: http://127.0.0.1:9/v1\n  model: judge-model\n", encoding="utf-8")
    llm = load_judge(f"llm:{config}", pack)
    assert isinstance(llm, LLMJudge) and isinstance(llm, Judge) and llm.name == "llm:judge-model"
    asyncio.run(llm.aclose())


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("llm", "unknown judge 'llm'"),
        ("rule", "unknown judge 'rule'"),
        ("http:judge.yaml", "use 'rules' or 'llm:CONFIG.yaml'"),
        ("llm:", "needs a config file"),
        ("llm:no/such/judge.yaml", "no such file"),
    ],
)
def test_load_judge_errors_are_clear(pack: Pack, spec: str, message: str) -> None:
    with pytest.raises(JudgeConfigError, match=message) as info:
        load_judge(spec, pack)
    assert isinstance(info.value, TargetError)
