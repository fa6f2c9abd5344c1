"""The perturbation core: span bookkeeping, the registry, and gold labels after any chain of perturbations."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botdrill.agents import (
    AgendaUser,
    GoldSlot,
    NoiseContext,
    Utterance,
    apply_chain,
    get_perturbation,
    perturbations,
)
from botdrill.scenarios import Pack, load_pack, normalize_value, sample_scenario

PACK = load_pack("banking")
CARD = GoldSlot(slot="card_last4", value="4410", start=15, end=19)
LOST = Utterance(text="my card ending 4410 was stolen", intent="lost_or_stolen_card", slots=(CARD,))


def edit(utt: Utterance, start: int, end: int, new: str, name: str = "p") -> Utterance:
    return utt.replace(start, end, new, perturbation=name, kind=name, intensity=1)


def test_an_insertion_before_a_slot_moves_it() -> None:
    out = edit(LOST, 0, 0, "um ")
    slot = out.slots[0]
    assert out.text[slot.start : slot.end] == "4410"
    assert out.edits[0].start == 0 and out.edits[0].end == 3 and out.edits[0].after == "um "


def test_an_insertion_after_a_slot_leaves_it() -> None:
    out = edit(LOST, 19, 19, "!!")
    assert out.slots == LOST.slots


def test_an_insertion_right_at_a_slot_start_goes_before_it() -> None:
    out = edit(LOST, 15, 15, "no ")
    assert out.text[out.slots[0].start : out.slots[0].end] == "4410"


@pytest.mark.parametrize(("start", "end"), [(15, 16), (17, 17), (10, 20), (18, 25)])
def test_an_edit_touching_a_slot_is_refused(start: int, end: int) -> None:
    with pytest.raises(ValueError, match="gold slot"):
        edit(LOST, start, end, "x")


def test_a_perturbation_that_changes_slots_by_design_passes_them() -> None:
    moved = CARD.model_copy(update={"start": 29, "end": 33})
    out = LOST.replace(15, 15, "4401 no sorry ", perturbation="s", kind="s", intensity=1, slots=[moved])
    assert out.text[29:33] == "4410" and out.slots == (moved,)


def test_an_edit_outside_the_text_is_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        edit(LOST, 5, 99, "x")


def test_earlier_edits_move_with_later_ones() -> None:
    out = edit(edit(LOST, 3, 7, "crad"), 0, 0, "uh ")
    first = out.edits[0]
    assert out.text[first.start : first.end] == "crad"


def test_an_empty_edit_is_not_stretched_by_an_insertion_at_its_place() -> None:
    out = edit(edit(Utterance(text="abcdef", intent="x"), 2, 3, ""), 2, 2, "XY")
    deleted, inserted = out.edits
    assert (deleted.start, deleted.end) == (2, 2)
    assert out.text[inserted.start : inserted.end] == "XY"


def test_fragments_rebase_slots_and_edits() -> None:
    out = edit(LOST, 0, 0, "um ").split_at([23], perturbation="fragments", intensity=1)
    first, second = out.messages()
    assert first.text == "um my card ending 4410" and second.text == "was stolen"
    assert first.text[first.slots[0].start : first.slots[0].end] == "4410"
    assert second.slots == ()
    assert [e.kind for e in second.edits] == ["break"]


def test_a_break_inside_a_slot_is_refused() -> None:
    with pytest.raises(ValueError, match="split a gold slot"):
        LOST.split_at([17], perturbation="fragments", intensity=1)


def test_an_edit_in_stripped_space_stays_inside_its_message() -> None:
    out = edit(Utterance(text="thanks .", intent="x"), 7, 8, "")
    (message,) = out.messages()
    assert all(0 <= e.start <= e.end <= len(message.text) for e in message.edits)


def test_registry_knows_the_issue_list() -> None:
    names = set(perturbations())
    assert {
        "filler",
        "repetition",
        "restart",
        "self_correction",
        "typo",
        "casing",
        "chatspeak",
        "homophone",
        "vague_opening",
        "off_answer",
        "fragments",
        "double_text",
        "barge_in",
        "topic_switch",
        "abandon",
    } <= names
    assert all(spec.description for spec in perturbations().values())


def test_unknown_perturbation_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match=r"known: .*typo"):
        get_perturbation("tpyo")


@pytest.mark.parametrize("intensity", [-1, 4])
def test_intensity_is_range_checked(intensity: int) -> None:
    with pytest.raises(ValueError, match="0-3"):
        get_perturbation("typo")(LOST, random.Random(0), intensity, NoiseContext(pack=PACK))


@pytest.mark.parametrize("name", [n for n, s in perturbations().items() if s.level == "text"])
def test_intensity_zero_is_the_identity(name: str) -> None:
    assert get_perturbation(name)(LOST, random.Random(0), 0, NoiseContext(pack=PACK)) == LOST


def test_dialogue_level_perturbations_leave_text_alone() -> None:
    chain = [(n, 3) for n, s in perturbations().items() if s.level == "dialogue"]
    assert apply_chain(LOST, chain, lambda _: random.Random(0), NoiseContext(pack=PACK)) == LOST


# -- gold labels survive any chain --------------------------------------------------------------------

TEXT_LEVEL = sorted(n for n, s in perturbations().items() if s.level == "text")
_USER = AgendaUser(PACK)


def _messages(pack: Pack, seed: int, index: int) -> list[Utterance]:
    """A user's opening and one answer per slot, as they would be sent."""
    scenario = sample_scenario(pack, seed, index)
    agenda = _USER.start(scenario)
    turns = [_USER.next_turn(agenda, None)]
    for slot in scenario.goal.slots:
        cue = pack.slot(slot).cues[0]
        turns.append(_USER.next_turn(agenda, f"What is the {cue}?"))
    return [Utterance(text=t.text, intent=t.intent, acts=tuple(t.acts), slots=tuple(t.slots)) for t in turns]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    index=st.integers(0, 500),
    chain=st.lists(st.tuples(st.sampled_from(TEXT_LEVEL), st.integers(0, 3)), min_size=1, max_size=6),
    channel=st.sampled_from(["mobile_chat", "desktop_chat", "voice"]),
)
def test_gold_spans_survive_any_chain(
    seed: int, index: int, chain: list[tuple[str, int]], channel: str
) -> None:
    ctx = NoiseContext(pack=PACK, distractors=("wallet", "savings", "mortgage", "statement"), channel=channel)
    for n, utt in enumerate(_messages(PACK, seed, index)):
        out = apply_chain(utt, chain, lambda name, n=n: random.Random(f"{seed}:{n}:{name}"), ctx)
        # The intent never changes, and acts only where a perturbation changes them by design.
        assert out.intent == utt.intent
        assert out.acts == utt.acts
        # Every gold slot survives, still pointing at its value.
        assert sorted(s.slot for s in out.slots) == sorted(s.slot for s in utt.slots)
        for s in out.slots:
            assert normalize_value(PACK.slot(s.slot), out.text[s.start : s.end], PACK) == s.value, (
                out.text,
                s,
            )
        # The same holds in every message the turn is sent as, and every edit lies inside its message.
        for message in out.messages():
            for s in message.slots:
                assert normalize_value(PACK.slot(s.slot), message.text[s.start : s.end], PACK) == s.value
            assert all(0 <= e.start <= e.end <= len(message.text) for e in message.edits)
        assert sum(len(m.slots) for m in out.messages()) == len(out.slots)
        # Same inputs, same result.
        again = apply_chain(utt, chain, lambda name, n=n: random.Random(f"{seed}:{n}:{name}"), ctx)
        assert again == out


def test_an_edit_cut_by_a_break_says_in_each_message_what_that_message_holds() -> None:
    utt = Utterance(text="i lost my card yesterday", intent="lost_or_stolen_card")
    utt = utt.replace(2, 14, "lsot my crad", perturbation="typo", kind="typo", intensity=2)
    utt = utt.split_at([6], perturbation="fragments", intensity=2)
    pieces = utt.messages()
    assert [p.text for p in pieces] == ["i lsot", "my crad yesterday"]
    typo = [[e for e in p.edits if e.perturbation == "typo"] for p in pieces]
    assert [[e.after for e in es] for es in typo] == [["lsot"], ["my crad"]]
    for piece, edits in zip(pieces, typo, strict=True):
        for e in edits:
            assert piece.text[e.start : e.end] == e.after
