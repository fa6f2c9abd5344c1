"""Surface perturbations: casing, chatspeak, homophone and fragments keep gold labels exact."""

from __future__ import annotations

import functools
import random

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botdrill.agents import AgendaUser, GoldSlot, UserTurn
from botdrill.agents._perturb import Edit, NoiseContext, Utterance, get_perturbation, perturbations
from botdrill.agents._surface import _check_strings, _Lexicon
from botdrill.scenarios import Pack, load_pack, normalize_value, sample_scenario

NAMES = ("casing", "chatspeak", "homophone", "fragments")
CHANNELS = ("mobile_chat", "desktop_chat", "voice")
SLOT_QUESTION = "Could you give me the last four digits of the card, and the amount please?"

# Messages on which each perturbation has something to do at every intensity.
SUITABLE = {
    "casing": "Hello. Can you help me with my card, please? I don't know what's happened.",
    "chatspeak": "Can you help me please, I don't know what to do with my account.",
    "homophone": "Their card is over there, I think it's your card too.",
    "fragments": "I lost my card yesterday, and I need a new one because I'm travelling on Monday.",
}


def utterance(turn: UserTurn) -> Utterance:
    return Utterance(text=turn.text, intent=turn.intent, acts=tuple(turn.acts), slots=tuple(turn.slots))


def plain(text: str, *slots: GoldSlot) -> Utterance:
    return Utterance(text=text, intent="test", slots=slots)


def slot(text: str, name: str, value: str, surface: str) -> GoldSlot:
    start = text.index(surface)
    return GoldSlot(slot=name, value=value, start=start, end=start + len(surface))


@functools.cache
def banking() -> Pack:
    return load_pack("banking")


@functools.cache
def real_messages() -> tuple[Utterance, ...]:
    """Openings and slot answers of simulated banking users: realistic text with real gold spans."""
    pack = banking()
    user = AgendaUser(pack)
    out = []
    for index in range(40):
        agenda = user.start(sample_scenario(pack, 11, index))
        out.append(utterance(user.next_turn(agenda, None)))
        out.append(utterance(user.next_turn(agenda, SLOT_QUESTION)))
    return tuple(out)


def run(
    name: str, utt: Utterance, intensity: int, *, seed: int = 0, channel: str = "mobile_chat"
) -> Utterance:
    ctx = NoiseContext(pack=banking(), channel=channel)
    return get_perturbation(name)(utt, random.Random(seed), intensity, ctx)


def assert_gold_holds(utt: Utterance) -> None:
    """Every gold span says its value, in the whole turn and in the message that carries it."""
    pack = banking()
    for s in utt.slots:
        assert normalize_value(pack.slot(s.slot), utt.text[s.start : s.end], pack) == s.value, (utt.text, s)
    carried = 0
    for fragment in utt.messages():
        for s in fragment.slots:
            surface = fragment.text[s.start : s.end]
            assert normalize_value(pack.slot(s.slot), surface, pack) == s.value, (fragment.text, s)
        carried += len(fragment.slots)
    assert carried == len(utt.slots), "a slot value was split across messages"


def new_edits(before: Utterance, after: Utterance) -> tuple[Edit, ...]:
    added: tuple[Edit, ...] = after.edits[len(before.edits) :]
    return added


def without_break_space(utt: Utterance) -> str:
    """The text with the spaces at message breaks (and at the ends) taken out."""
    drop: set[int] = set()
    for b in utt.breaks:
        i = b
        while i > 0 and utt.text[i - 1].isspace():
            i -= 1
            drop.add(i)
        i = b
        while i < len(utt.text) and utt.text[i].isspace():
            drop.add(i)
            i += 1
    return "".join(c for i, c in enumerate(utt.text) if i not in drop).strip()


def word_count(text: str) -> int:
    return len(text.split())


# --------------------------------------------------------------------------------------------------
# Common contract


def test_all_four_are_registered_text_perturbations() -> None:
    registry = perturbations()
    for name in NAMES:
        assert registry[name].level == "text"
        assert registry[name].description


@pytest.mark.parametrize("name", NAMES)
def test_intensity_zero_is_the_identity(name: str) -> None:
    for utt in [plain(SUITABLE[name]), *real_messages()[:10]]:
        assert run(name, utt, 0) is utt


@pytest.mark.parametrize("intensity", [1, 2, 3])
@pytest.mark.parametrize("name", NAMES)
def test_each_changes_a_suitable_message(name: str, intensity: int) -> None:
    utt = plain(SUITABLE[name])
    out = run(name, utt, intensity)
    assert out.text != utt.text or len(out.messages()) > 1
    assert new_edits(utt, out)
    assert {e.perturbation for e in out.edits} == {name}
    assert {e.intensity for e in out.edits} == {intensity}


@pytest.mark.parametrize("name", NAMES)
def test_a_seed_gives_the_same_result(name: str) -> None:
    for utt in real_messages()[:20]:
        for intensity in (1, 2, 3):
            first = run(name, utt, intensity, seed=5, channel="voice")
            assert run(name, utt, intensity, seed=5, channel="voice") == first


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("name", NAMES)
def test_edits_say_what_the_text_now_holds_and_gold_is_kept(name: str, channel: str) -> None:
    for i, utt in enumerate(real_messages()):
        for intensity in (1, 2, 3):
            out = run(name, utt, intensity, seed=i, channel=channel)
            for e in new_edits(utt, out):
                assert out.text[e.start : e.end] == e.after, (out.text, e)
                assert e.kind in {"casing", "punctuation", "chatspeak", "homophone", "break"}
            assert_gold_holds(out)


# --------------------------------------------------------------------------------------------------
# casing


def test_casing_by_intensity() -> None:
    text = "Hello, I can't find it. Can you help me?! I'm stuck."
    assert run("casing", plain(text), 1).text == "hello, I can't find it. Can you help me?! I'm stuck"
    assert run("casing", plain(text), 2).text == "hello i can't find it can you help me? i'm stuck"
    assert run("casing", plain(text), 3).text == "hello i cant find it can you help me im stuck"


def test_casing_records_casing_and_punctuation_edits() -> None:
    out = run("casing", plain("Hi. OK."), 2)
    assert out.text == "hi ok"
    assert sorted(e.kind for e in out.edits) == ["casing", "casing", "punctuation", "punctuation"]


def test_casing_keeps_slot_punctuation_and_lower_cases_slot_letters() -> None:
    text = "I paid £45.50 at Sainsbury's on 14/03. Tom Walker, CF10 1EP."
    slots = (
        slot(text, "amount", "45.50", "£45.50"),
        slot(text, "merchant", "Sainsbury's", "Sainsbury's"),
        slot(text, "date", "2026-03-14", "14/03"),
        slot(text, "payee", "Tom Walker", "Tom Walker"),
        slot(text, "postcode", "CF10 1EP", "CF10 1EP"),
    )
    out = run("casing", plain(text, *slots), 3)
    assert out.text == "i paid £45.50 at sainsbury's on 14/03 tom walker cf10 1ep"
    assert_gold_holds(out)


def test_casing_at_intensity_one_leaves_a_slot_first_letter_and_an_acronym() -> None:
    text = "Tom Walker is the payee."
    out = run("casing", plain(text, slot(text, "payee", "Tom Walker", "Tom Walker")), 1)
    assert out.text == "Tom Walker is the payee"
    assert run("casing", plain("BT sent a bill."), 1).text == "BT sent a bill"


def test_casing_drops_the_space_before_a_mark_and_keeps_marks_inside_words() -> None:
    assert run("casing", plain("thanks , bye ."), 2).text == "thanks bye"
    assert run("casing", plain("it was 3.5 or so, e.g.this"), 2).text == "it was 3.5 or so e.g.this"
    assert run("casing", plain("... and so on"), 2).text == "... and so on"


# --------------------------------------------------------------------------------------------------
# chatspeak


def test_chatspeak_replaces_whole_words_only() -> None:
    text = "The youth group and bayou tours are yours, thankful folks, okayish, whatever."
    for intensity in (1, 2, 3):
        out = run("chatspeak", plain(text), intensity)
        for word in ("youth", "bayou", "yours", "thankful", "okayish", "whatever"):
            assert word in out.text, (word, out.text)


def test_chatspeak_does_not_cut_contractions() -> None:
    out = run("chatspeak", plain("you're sure they aren't"), 3)
    assert "u're" not in out.text
    assert "aren't" in out.text
    assert out.text.startswith(("ur ", "youre "))


def test_chatspeak_phrases_and_listed_words() -> None:
    out = run("chatspeak", plain("to be honest I don't know, thank you"), 3)
    assert out.text.startswith("tbh ")
    assert any(a in out.text for a in ("idk", "i dunno", "dunno"))
    assert "don't" not in out.text
    assert run("chatspeak", plain("is your card here"), 3).text.split()[1] in {"ur", "yr"}


def test_chatspeak_matches_a_phrase_typed_without_its_apostrophe() -> None:
    out = run("chatspeak", plain("i dont know"), 3)
    assert out.text in {"idk", "dunno", "i dunno"}


def test_chatspeak_keeps_case_where_it_means_something() -> None:
    assert run("chatspeak", plain("PLEASE"), 3).text in {"PLS", "PLZ", "PLSE"}
    assert run("chatspeak", plain("Please help. Thanks"), 3).text.split()[0] in {"Pls", "Plz", "Plse"}
    assert run("chatspeak", plain("well, I don't know"), 3).text.split()[1] in {"idk", "dunno", "i"}


def test_chatspeak_share_grows_with_intensity() -> None:
    text = " ".join(["you"] * 20)
    counts = [sum(w == "u" for w in run("chatspeak", plain(text), i).text.split()) for i in (1, 2, 3)]
    assert counts == [6, 12, 20]


def test_chatspeak_never_touches_a_slot_value() -> None:
    text = "please send it to my savings account, thank you"
    gold = slot(text, "payee", "my savings account", "my savings account")
    out = run("chatspeak", plain(text, gold), 3)
    assert out.text[out.slots[0].start : out.slots[0].end] == "my savings account"
    assert "pls" in out.text or "plz" in out.text or "plse" in out.text


# --------------------------------------------------------------------------------------------------
# homophone


def test_homophone_on_a_typed_channel_uses_spelling_confusions_only() -> None:
    text = "I want four pounds for the hour, no more."
    assert run("homophone", plain(text), 3).text == text
    out = run("homophone", plain("their card is here"), 3)
    assert out.text.split()[0] in {"there", "they're"}
    assert out.text.split()[3] == "hear"


def test_homophone_on_voice_uses_number_words_and_mishearings() -> None:
    out = run("homophone", plain("I want to pay for my account"), 1, channel="voice")
    assert out.text != "I want to pay for my account"
    full = run("homophone", plain("for my account"), 3, channel="voice")
    assert full.text == "four my a count"


def test_homophone_voice_transcript_has_no_punctuation_outside_slots() -> None:
    text = "Hello! I paid £45.50 for Tom Walker, didn't I?"
    slots = (slot(text, "amount", "45.50", "£45.50"), slot(text, "payee", "Tom Walker", "Tom Walker"))
    out = run("homophone", plain(text, *slots), 2, channel="voice")
    assert out.text == out.text.lower()
    assert not set(out.text) & set(",!?")
    assert "£45.50" in out.text
    assert "didn't" in out.text
    assert_gold_holds(out)
    typed = run("homophone", plain(text, *slots), 2, channel="mobile_chat")
    assert typed.text == text  # nothing to confuse, and typed text keeps its punctuation


# --------------------------------------------------------------------------------------------------
# fragments

LONG = "Hi there, I lost my debit card yesterday and I think someone has used it, can you block it please"


@pytest.mark.parametrize(("intensity", "allowed"), [(1, {2}), (2, {2, 3}), (3, {3, 4})])
def test_fragments_makes_the_requested_number_of_messages(intensity: int, allowed: set[int]) -> None:
    seen = set()
    for seed in range(30):
        out = run("fragments", plain(LONG), intensity, seed=seed)
        pieces = out.messages()
        seen.add(len(pieces))
        assert all(word_count(p.text) >= 2 for p in pieces), [p.text for p in pieces]
        assert "".join(p.text for p in pieces) == without_break_space(out)
        assert out.text == LONG
        assert all(e.kind == "break" for e in out.edits)
        assert len(out.edits) == len(pieces) - 1
    assert seen == allowed


def test_fragments_prefers_clause_boundaries() -> None:
    text = "my card was stolen yesterday, and now I see payments I never made"
    for seed in range(10):
        pieces = [p.text for p in run("fragments", plain(text), 1, seed=seed).messages()]
        assert pieces == ["my card was stolen yesterday,", "and now I see payments I never made"]


def test_fragments_never_splits_a_slot_value_and_rebases_spans() -> None:
    text = "please send two hundred and fifty pounds to Tom Walker"
    slots = (
        slot(text, "amount", "250.00", "two hundred and fifty pounds"),
        slot(text, "payee", "Tom Walker", "Tom Walker"),
    )
    for seed in range(20):
        out = run("fragments", plain(text, *slots), 3, seed=seed)
        assert len(out.messages()) >= 3
        assert_gold_holds(out)


def test_fragments_leaves_a_one_word_message_whole_and_splits_short_ones_as_it_can() -> None:
    for intensity in (1, 2, 3):
        assert run("fragments", plain("7437"), intensity) == plain("7437")
        assert [p.text for p in run("fragments", plain("card 7437"), intensity).messages()] == [
            "card",
            "7437",
        ]
    text = "Tom Walker"
    assert run("fragments", plain(text, slot(text, "payee", "Tom Walker", text)), 3).breaks == ()


def test_fragments_on_a_fragmented_turn_only_adds_what_is_missing() -> None:
    once = run("fragments", plain(LONG), 3, seed=1)
    again = run("fragments", once, 1, seed=2)
    assert again == once


def test_a_mark_dropped_before_a_break_stays_with_its_message() -> None:
    lowered = run("casing", plain("Hello, I lost my card, and I need a new one"), 2)
    first, second = run("fragments", lowered, 1).messages()
    assert (first.text, second.text) == ("hello i lost my card", "and i need a new one")
    dropped = sorted((e.start, e.end, e.before) for e in first.edits if e.kind == "punctuation")
    assert dropped == [(5, 5, ","), (len(first.text), len(first.text), ",")]
    assert sorted(e.kind for e in second.edits) == ["break", "casing"]


# --------------------------------------------------------------------------------------------------
# Chains over real messages

chains = st.lists(st.tuples(st.sampled_from(NAMES), st.integers(0, 3)), min_size=1, max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    index=st.integers(0, 79),
    chain=chains,
    seed=st.integers(0, 2**32 - 1),
    channel=st.sampled_from(CHANNELS),
)
def test_any_chain_keeps_every_gold_span_on_its_value(
    index: int, chain: list[tuple[str, int]], seed: int, channel: str
) -> None:
    utt = real_messages()[index]
    rng = random.Random(seed)
    ctx = NoiseContext(pack=banking(), channel=channel)
    for name, intensity in chain:
        utt = get_perturbation(name)(utt, random.Random(rng.random()), intensity, ctx)
        assert_gold_holds(utt)
    for fragment in utt.messages():
        assert fragment.text == fragment.text.strip()
        assert fragment.text
        assert all(0 <= e.start <= e.end <= len(fragment.text) for e in fragment.edits)


# --------------------------------------------------------------------------------------------------
# Word lists


def test_word_lists_reject_values_yaml_reads_as_booleans() -> None:
    with pytest.raises(ValueError, match="quote it"):
        _check_strings(yaml.safe_load("chatspeak:\n  no: [nah]\n"), "surface.yaml")


def test_word_lists_reject_keys_that_collide_without_apostrophes() -> None:
    with pytest.raises(ValueError, match="collides"):
        _Lexicon.build({"its": ["x"], "it's": ["y"]}, drop_apostrophes=True)


# --------------------------------------------------------------------------------------------------
# Utterance.messages keeps edits inside the stripped message


def test_messages_rebases_an_edit_in_stripped_trailing_space_to_a_valid_span() -> None:
    utt = plain("thanks .").replace(7, 8, "", perturbation="casing", kind="punctuation", intensity=2)
    (fragment,) = utt.messages()
    (edit,) = fragment.edits
    assert 0 <= edit.start <= edit.end <= len(fragment.text)
