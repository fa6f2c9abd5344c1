"""Disfluency perturbations: what they change, what they must never change, and the rule that types them."""

from __future__ import annotations

import importlib
import random
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botdrill.agents import AgendaUser, GoldSlot, UserTurn
from botdrill.agents._disfluency import (
    EDITING_PHRASES,
    DisfluencyModel,
    analyse_pair,
    classify_pair,
    is_filler,
    model,
    template_units,
)
from botdrill.agents._perturb import NoiseContext, Utterance, get_perturbation, perturbations
from botdrill.scenarios import Complexity, Pack, Quotas, load_pack, mentions, normalize_value, sample_scenario

NAMES = ("filler", "repetition", "restart", "self_correction", "disfluency")
KINDS = {"filler", "repetition", "restart", "self_correction"}
DISTRACTORS = ("savings account", "mortgage", "Tesco", "overdraft", "direct debit", "statement", "PIN")


@cache
def _pack() -> Pack:
    return load_pack("banking")


def _utterance(turn: UserTurn) -> Utterance:
    return Utterance(text=turn.text, intent=turn.intent, acts=tuple(turn.acts), slots=tuple(turn.slots))


SIMPLE = Quotas(complexity={Complexity.SIMPLE: 1.0})


@cache
def _banking_messages() -> tuple[Utterance, ...]:
    """Openings of sampled banking dialogues, and the user's answers when asked for each slot."""
    pack = _pack()
    user = AgendaUser(pack)
    out = []
    for index in range(40):
        # Simple dialogues: a correction dialogue's wrong value would make its next message a correction.
        agenda = user.start(sample_scenario(pack, 11, index, quotas=SIMPLE))
        out.append(_utterance(user.next_turn(agenda, None)))
        for name in agenda.scenario.goal.slots:
            out.append(
                _utterance(user.next_turn(agenda, f"Could you tell me the {pack.slot(name).cues[0]}?"))
            )
    return tuple(out)


def _with_slots() -> list[Utterance]:
    return [u for u in _banking_messages() if u.slots]


def _ctx(pack: Pack | None = None) -> NoiseContext:
    return NoiseContext(pack=pack, distractors=DISTRACTORS)


def _card_message() -> Utterance:
    text = "My card ending 4410 was taken at the station"
    start = text.index("4410")
    return Utterance(
        text=text,
        intent="lost_card",
        slots=(GoldSlot(slot="card_last4", value="4410", start=start, end=start + 4),),
    )


def _said_by_mistake(inserted: str) -> str:
    """The wrong value of a self-correction: what it inserted, less the editing phrase that follows."""
    vocabulary = {w for phrase in EDITING_PHRASES for w in phrase.split()}
    words = inserted.replace(",", " ").split()
    while words and (words[-1].lower() in vocabulary or is_filler(words[-1].lower())):
        words.pop()
    return " ".join(words)


def _check_edits(utt: Utterance, name: str) -> None:
    for edit in utt.edits:
        assert utt.text[edit.start : edit.end] == edit.after
        assert edit.perturbation == name
        assert edit.kind in KINDS


# -- registry and contract ------------------------------------------------------------------------------


def test_all_registered_as_text_perturbations() -> None:
    registry = perturbations()
    for name in NAMES:
        assert registry[name].level == "text"
        assert registry[name].description


@pytest.mark.parametrize("name", NAMES)
def test_intensity_zero_is_the_identity(name: str) -> None:
    utt = _card_message()
    assert get_perturbation(name)(utt, random.Random(1), 0, _ctx(_pack())) is utt


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("intensity", [1, 2, 3])
def test_changes_the_text_and_records_edits(name: str, intensity: int) -> None:
    spec = get_perturbation(name)
    for seed, utt in enumerate(_banking_messages()[:12]):
        out = spec(utt, random.Random(seed), intensity, _ctx(_pack()))
        bare_value = sum(s.end - s.start for s in utt.slots) == len(utt.text)
        if name == "repetition" and bare_value:  # "300 pounds": nothing outside the value to repeat
            assert out.text == utt.text
            continue
        assert out.text != utt.text, (name, utt.text)
        assert out.edits
        _check_edits(out, name)


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_for_a_seed(name: str) -> None:
    spec = get_perturbation(name)
    utt = _banking_messages()[0]
    runs = [spec(utt, random.Random(seed), 2, _ctx(_pack())).text for seed in (5, 5, 6, 7, 8)]
    assert runs[0] == runs[1]
    assert len(set(runs)) > 1


@pytest.mark.parametrize("name", NAMES)
def test_never_touches_slot_characters(name: str) -> None:
    spec = get_perturbation(name)
    for seed, utt in enumerate(_with_slots()[:30]):
        for intensity in (1, 3):
            out = spec(utt, random.Random(seed), intensity, _ctx(_pack()))
            assert [s.value for s in out.slots] == [s.value for s in utt.slots]
            assert [out.text[s.start : s.end] for s in out.slots] == [
                utt.text[s.start : s.end] for s in utt.slots
            ]


@pytest.mark.parametrize("name", NAMES)
def test_works_without_a_pack(name: str) -> None:
    spec = get_perturbation(name)
    question = Utterance(text="Which branch issued the replacement card last week?", intent="question")
    for seed in range(10):
        out = spec(question, random.Random(seed), 1, _ctx())
        assert out.text != question.text
        _check_edits(out, name)
    # No distractors at all: nothing to borrow, but nothing breaks either.
    spec(question, random.Random(0), 3, NoiseContext())


# -- what each one does ------------------------------------------------------------------------------------


def test_self_correction_says_a_wrong_value_first_and_keeps_gold_on_the_right_one() -> None:
    pack = _pack()
    spec = pack.slot("card_last4")
    utt = _card_message()
    for seed in range(20):
        out = get_perturbation("self_correction")(utt, random.Random(seed), 1, _ctx(pack))
        (gold,) = out.slots
        assert out.text[gold.start : gold.end] == "4410"
        (edit,) = out.edits
        assert edit.kind == "self_correction"
        assert edit.end == gold.start  # the wrong value comes just before the right one
        assert mentions(spec, edit.after, pack) == [_said_by_mistake(edit.after)]
        assert normalize_value(spec, _said_by_mistake(edit.after), pack) not in (None, "4410")


def test_self_correction_of_every_slot_type_normalises_to_another_value() -> None:
    pack = _pack()
    seen = set()
    for seed, utt in enumerate(_with_slots()):
        out = get_perturbation("self_correction")(utt, random.Random(seed), 1, _ctx(pack))
        (edit,) = out.edits
        slot = next(s for s in out.slots if s.start == edit.end)
        spec = pack.slot(slot.slot)
        seen.add(spec.type)
        said = normalize_value(spec, _said_by_mistake(edit.after), pack)
        assert said is not None and said != slot.value, (edit.after, slot)
    assert len(seen) == 4


def test_self_correction_without_slot_corrects_a_content_word_with_a_distractor() -> None:
    utt = Utterance(text="I want to close my current account today", intent="close")
    out = get_perturbation("self_correction")(utt, random.Random(3), 1, _ctx())
    (edit,) = out.edits
    assert any(d.lower() in edit.after.lower() for d in DISTRACTORS)
    assert out.text.replace(edit.after, "") == utt.text


def test_restart_puts_the_false_start_before_the_whole_message() -> None:
    utt = Utterance(text="Good morning, I lost my card on the bus", intent="lost_card")
    for seed in range(10):
        out = get_perturbation("restart")(utt, random.Random(seed), 1, _ctx(_pack()))
        assert out.text.startswith("Good morning, ")
        assert out.text.lower().endswith("i lost my card on the bus")
        body = out.text.removeprefix("Good morning, ")
        assert classify_pair("I lost my card on the bus", body) == "restart"


def test_repetition_and_filler_are_typed_as_such() -> None:
    utt = Utterance(text="I need to report a problem with my account", intent="x")
    for seed in range(10):
        rep = get_perturbation("repetition")(utt, random.Random(seed), 1, _ctx())
        assert classify_pair(utt.text, rep.text) == "repetition"
        fil = get_perturbation("filler")(utt, random.Random(seed), 2, _ctx())
        assert classify_pair(utt.text, fil.text) == "filler"
        assert len(fil.edits) == 2


def test_fillers_scale_with_intensity() -> None:
    utt = Utterance(text="I need to report a problem with my account please", intent="x")
    counts = [len(get_perturbation("filler")(utt, random.Random(0), i, _ctx()).edits) for i in (1, 2, 3)]
    assert counts[0] == 1 and counts[1] == 2 and counts[2] >= 3


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    index=st.integers(0, 200),
    seed=st.integers(0, 2**32 - 1),
    intensity=st.integers(0, 3),
    chain=st.lists(st.sampled_from(NAMES), min_size=1, max_size=3),
)
def test_gold_spans_still_say_their_value(index: int, seed: int, intensity: int, chain: list[str]) -> None:
    pack = _pack()
    user = AgendaUser(pack)
    agenda = user.start(sample_scenario(pack, seed % 1000, index))
    turns = [user.next_turn(agenda, None)]
    for name in agenda.scenario.goal.slots:
        turns.append(user.next_turn(agenda, f"What is the {pack.slot(name).cues[0]}?"))
    rng = random.Random(seed)
    for turn in turns:
        utt = _utterance(turn)
        for name in chain:
            utt = get_perturbation(name)(utt, rng, intensity, _ctx(pack))
        for s in utt.slots:
            assert normalize_value(pack.slot(s.slot), utt.text[s.start : s.end], pack) == s.value


# -- the typing rule -----------------------------------------------------------------------------------------


def test_classifier_on_hand_written_pairs() -> None:
    restart = analyse_pair("How do I reset my PIN?", "How do I no wait, how do I reset my PIN?")
    assert (restart.type, restart.editing_term, restart.reparandum) == (
        "restart",
        "no wait",
        ("how", "do", "i"),
    )
    assert restart.restart_mode == "same_start" and restart.lowercase_repair is True

    other = analyse_pair("Where is my card?", "When is uh sorry where is my card?")
    assert (other.type, other.interregnum, other.restart_mode) == ("restart", "{F} sorry", "swap_first")
    assert other.interregnum_fillers == ("uh",)

    correction = analyse_pair("I paid 40 pounds at Tesco", "I paid 40 pounds at Asda, no sorry, at Tesco")
    assert correction.type == "correction"
    assert correction.editing_phrases == ("no", "sorry")
    assert correction.reparandum == ("asda",) and correction.repair_prefix == ("at",)
    assert correction.comma_before and correction.comma_after

    bare = analyse_pair("Block the card ending 4410", "Block the card ending 4401 4410")
    assert (bare.type, bare.editing_term, bare.interregnum) == ("correction", "", "")

    assert classify_pair("my card is blocked", "my um card is uh blocked") == "filler"
    assert analyse_pair("my card is blocked", "my um card is uh blocked").fillers == ("um", "uh")
    assert classify_pair("my card is blocked", "my my card is blocked") == "repetition"
    assert classify_pair("my card is blocked", "My card is blocked!") == "none"
    assert classify_pair("please block my card now", "please block my card") == "other"
    assert classify_pair("what is the deadline", "what is the dedline") == "none"  # a typo, not a disfluency


# -- the fitted model -----------------------------------------------------------------------------------


def test_shipped_model_holds_only_statistics() -> None:
    m = model()
    for shares in (m.types, m.regions, m.interregna, m.fillers, m.restart_length, m.correction_length):
        assert sum(shares.values()) == pytest.approx(1.0, abs=0.01)
    phrases = set(EDITING_PHRASES) | {"{F}"}
    for template in m.interregna:
        assert set(template_units(template)) <= phrases, template
    assert m.types["restart"] > 0.3 and m.types["correction"] > 0.3


def _calibration() -> ModuleType:
    root = str(Path(__file__).resolve().parents[2])
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module("bench.calibrate_disfluency")


def test_fit_reads_its_own_output() -> None:
    calibration = _calibration()
    pairs = [
        ("Where is my card?", "When did no where is my card?"),
        ("I paid 40 pounds at Tesco", "I paid 40 pounds at Asda, sorry, at Tesco"),
        ("Can I raise my overdraft?", "Can I raise my savings or rather my overdraft?"),
    ]
    params = calibration.fit(pairs)
    fitted = DisfluencyModel.from_dict(params)
    assert fitted.types == pytest.approx({"correction": 2 / 3, "restart": 1 / 3}, abs=1e-3)
    assert calibration.compare(params, params) == []


def test_shipped_model_agrees_with_a_fresh_calibration() -> None:
    calibration = _calibration()
    data_dir = calibration.default_data_dir()
    try:
        pairs = calibration.load_pairs(data_dir)
    except FileNotFoundError as exc:
        pytest.skip(f"Disfl-QA is not available ({exc}); set BOTDRILL_DATA to the shared data folder")
    import yaml

    fresh = calibration.fit((o, d) for _, o, d in pairs)
    shipped = yaml.safe_load(calibration.OUT.read_text(encoding="utf-8"))
    assert calibration.compare(fresh, shipped) == []
