"""The SimPy clock of one dialogue: typing, latency, reading, and interruptions decided by time."""

from __future__ import annotations

import pytest

from botdrill.simulator._clock import DialogueClock


def clock(wait_s: float | None = 3.0) -> DialogueClock[str]:
    # 5 characters a second, 1 s to think, 25 characters a second to read.
    return DialogueClock(typing_cps=5.0, think_s=1.0, reading_cps=25.0, wait_s=wait_s)


def test_first_message_is_sent_after_thinking_and_typing() -> None:
    c = clock()
    c.type_turn(["a"], ["hello"], after_reading=None)
    sent = c.next_message()
    assert sent.item == "a"
    assert sent.at == pytest.approx(1.0 + 5 / 5.0)


def test_reply_arrives_after_the_latency() -> None:
    c = clock(wait_s=None)
    c.type_turn(["a"], ["hello"], after_reading=None)
    sent = c.next_message()
    assert c.reply(1.5) == pytest.approx(sent.at + 1.5)


def test_next_turn_waits_for_reading_and_thinking() -> None:
    c = clock(wait_s=None)
    c.type_turn(["a"], ["hello"], after_reading=None)
    c.next_message()
    replied = c.reply(1.0)
    c.type_turn(["b"], ["ok"], after_reading="x" * 50)
    assert c.next_message().at == pytest.approx(replied + 50 / 25.0 + 1.0 + 2 / 5.0)


def test_fragments_typed_while_the_assistant_thinks_arrive_before_its_reply() -> None:
    c = clock(wait_s=None)
    c.type_turn(["f1", "f2"], ["hello", "there"], after_reading=None)
    first = c.next_message()
    replied = c.reply(10.0)  # slow assistant
    second = c.next_message()
    assert second.item == "f2"
    assert first.at < second.at < replied  # sent before the reply it did not see


def test_fragments_after_a_fast_reply_come_after_it() -> None:
    c = clock(wait_s=None)
    c.type_turn(["f1", "f2"], ["hello", "there"], after_reading=None)
    c.next_message()
    replied = c.reply(0.1)
    assert c.next_message().at > replied


def test_a_slow_reply_makes_an_impatient_user_interject() -> None:
    c = clock(wait_s=3.0)
    c.type_turn(["a"], ["hello"], after_reading=None)
    sent = c.next_message()
    replied = c.reply(10.0, lambda: ("nudge", "??"))
    assert c.queued == 1
    nudge = c.next_message()
    assert nudge.item == "nudge"
    assert nudge.at == pytest.approx(sent.at + 3.0 + 2 / 5.0)
    assert nudge.at < replied


def test_a_reply_within_patience_is_not_interrupted() -> None:
    c = clock(wait_s=3.0)
    asked = []
    c.type_turn(["a"], ["hello"], after_reading=None)
    c.next_message()
    c.reply(2.9, lambda: asked.append(1) or ("nudge", "??"))
    assert asked == []
    assert c.queued == 0


def test_a_reply_that_overtakes_the_typing_discards_the_interjection() -> None:
    c = clock(wait_s=3.0)
    discarded: list[str] = []
    c.type_turn(["a"], ["hello"], after_reading=None)
    c.next_message()
    # Patience runs out at 3 s; typing 20 characters takes 4 s; the reply comes at 5 s, first.
    c.reply(5.0, lambda: ("long", "x" * 20), discarded.append)
    assert discarded == ["long"]
    assert c.queued == 0


def test_a_user_still_typing_fragments_does_not_interject() -> None:
    c = clock(wait_s=0.5)
    asked = []
    c.type_turn(["f1", "f2"], ["hello", "there you are"], after_reading=None)
    c.next_message()
    c.reply(10.0, lambda: asked.append(1) or ("nudge", "??"))
    assert asked == []
    assert c.next_message().item == "f2"


def test_a_user_who_will_not_interrupt_again_returns_none() -> None:
    c = clock(wait_s=1.0)
    c.type_turn(["a"], ["hello"], after_reading=None)
    c.next_message()
    c.reply(10.0, lambda: None)
    assert c.queued == 0


def test_waiting_for_a_message_nobody_types_is_an_engine_error() -> None:
    with pytest.raises(RuntimeError, match="nobody is typing"):
        clock().next_message()


def test_time_never_goes_backwards_over_a_dialogue() -> None:
    c = clock(wait_s=2.0)
    nows, sends = [], []
    nudges = iter(range(4))  # this user nudges four times in all

    def nudge() -> tuple[str, str] | None:
        return ("nudge", "?") if next(nudges, None) is not None else None

    for turn in range(5):
        c.type_turn([f"t{turn}a", f"t{turn}b"], ["one two", "three"], after_reading="reply" if turn else None)
        while c.queued:
            sent = c.next_message()
            sends.append(sent.at)
            nows.append(c.now)
            nows.append(c.reply(0.5 + turn * 2.0, nudge))
    assert nows == sorted(nows)
    assert sends == sorted(sends)  # the assistant takes messages in the order they were sent
    assert len(sends) == 14  # ten messages, and the slow replies of later turns drew all four nudges
