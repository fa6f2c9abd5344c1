"""The `typo` perturbation: slips and real misspellings in the fitted mix, never inside a slot value."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from botdrill.agents import AgendaUser, GoldSlot, UserTurn
from botdrill.agents._perturb import NoiseContext, Utterance, get_perturbation
from botdrill.agents._typos import (
    EDIT_TYPES,
    edit_mode,
    edit_type,
    fit,
    keyboard_neighbours,
    load_config,
    load_model,
    misspell,
    read_misspellings,
)
from botdrill.scenarios import Pack, normalize_value, sample_scenario

TYPO = get_perturbation("typo")
MOBILE = NoiseContext(channel="mobile_chat")
DESKTOP = NoiseContext(channel="desktop_chat")
KINDS = {f"typo.{t}" for t in EDIT_TYPES if t != "multi"} | {"typo.misspelling"}
TEXT = "Hi, I noticed a payment on my account yesterday that I definitely did not make, can you help me?"


def _data_dir() -> Path:
    env = os.environ.get("BOTDRILL_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"


WIKIPEDIA = _data_dir() / "misspellings" / "wikipedia.dat"
needs_data = pytest.mark.skipif(
    not WIKIPEDIA.is_file(),
    reason="real misspellings (misspellings/wikipedia.dat) not found: set BOTDRILL_DATA to the data folder",
)


def _utt(text: str, *slots: GoldSlot) -> Utterance:
    return Utterance(text=text, intent="test", slots=slots)


def _from_turn(turn: UserTurn) -> Utterance:
    return Utterance(text=turn.text, intent=turn.intent, acts=tuple(turn.acts), slots=tuple(turn.slots))


def _check_edits(utt: Utterance, intensity: int) -> None:
    for e in utt.edits:
        assert utt.text[e.start : e.end] == e.after
        assert e.kind in KINDS
        assert (e.perturbation, e.intensity) == ("typo", intensity)


def test_intensity_zero_is_identity() -> None:
    utt = _utt(TEXT)
    assert TYPO(utt, random.Random(1), 0, MOBILE) == utt


@pytest.mark.parametrize("intensity", [1, 2, 3])
def test_misspells_at_least_one_word(intensity: int) -> None:
    for seed in range(30):
        out = TYPO(_utt(TEXT), random.Random(seed), intensity, DESKTOP)
        assert out.text != TEXT
        assert out.edits
        _check_edits(out, intensity)


def test_spares_single_letters_and_numbers() -> None:
    utt = _utt("I a 12 $5, 3 x 4")
    assert TYPO(utt, random.Random(0), 3, MOBILE) == utt


def test_rate_grows_with_intensity_and_is_higher_on_mobile() -> None:
    def words_hit(intensity: int, ctx: NoiseContext) -> float:
        words = ["payment", "account", "yesterday", "balance", "transfer"] * 20
        utt = _utt(" ".join(words))
        outs = [TYPO(utt, random.Random(s), intensity, ctx).text.split() for s in range(20)]
        changed = sum(1 for out in outs for a, b in zip(words, out, strict=True) if a != b)
        return changed / (20 * len(words))

    desktop = [words_hit(i, DESKTOP) for i in (1, 2, 3)]
    mobile = [words_hit(i, MOBILE) for i in (1, 2, 3)]
    assert desktop == sorted(desktop) and mobile == sorted(mobile)
    assert all(d < m for d, m in zip(desktop, mobile, strict=True))
    assert 0.01 < desktop[0] < 0.06 and 0.15 < mobile[2] < 0.35


def test_deterministic_for_a_seed() -> None:
    runs = [TYPO(_utt(TEXT), random.Random(42), 3, MOBILE) for _ in range(2)]
    assert runs[0] == runs[1]
    assert TYPO(_utt(TEXT), random.Random(43), 3, MOBILE).text != runs[0].text


def test_never_touches_slot_characters() -> None:
    text = "please transfer 250 dollars to Jonathan Smith tomorrow from account 12345678 thanks"
    slots = (
        GoldSlot(slot="amount", value="250.00", start=16, end=27),
        GoldSlot(slot="payee", value="Jonathan Smith", start=31, end=45),
        GoldSlot(slot="date", value="tomorrow", start=46, end=54),
        GoldSlot(slot="account", value="12345678", start=68, end=76),
    )
    said = [text[s.start : s.end] for s in slots]
    for seed in range(200):
        out = TYPO(_utt(text, *slots), random.Random(seed), 3, MOBILE)
        assert [out.text[s.start : s.end] for s in out.slots] == said
        assert [s.value for s in out.slots] == [s.value for s in slots]
        _check_edits(out, 3)


def test_voice_transcripts_have_no_typos() -> None:
    utt = _utt(TEXT)
    for intensity in (1, 2, 3):
        assert TYPO(utt, random.Random(intensity), intensity, NoiseContext(channel="voice")) == utt


@pytest.mark.parametrize(
    ("correct", "wrong", "expected"),
    [
        ("account", "acount", "omission"),
        ("Caracas", "carcas", "omission"),  # capitals are no part of a spelling error
        ("until", "untill", "insertion"),
        ("arguments", "arguements", "insertion"),
        ("separate", "seperate", "substitution"),
        ("payment", "paynent", "substitution"),
        ("received", "recieved", "transposition"),
        ("the", "hte", "transposition"),
        ("tomorrow", "tommorow", "multi"),  # one letter doubled, another undoubled
        ("succeed", "seceed", "multi"),
        ("because", "becuz", "multi"),
        ("accept", "except", "multi"),
        ("balance", "balance", None),
    ],
)
def test_edit_type_of_hand_written_pairs(correct: str, wrong: str, expected: str | None) -> None:
    assert edit_type(correct, wrong) == expected


@pytest.mark.parametrize(
    ("correct", "wrong", "mode"),
    [
        ("definitely", "definately", "vowel"),
        ("consensus", "concensus", "sound"),
        ("payment", "paymrnt", "keyboard"),
        ("until", "untill", "double"),
        ("argument", "arguement", "vowel"),
        ("accommodate", "accomodate", "double"),
        ("rhythm", "rythm", "other"),
    ],
)
def test_edit_mode_of_hand_written_pairs(correct: str, wrong: str, mode: str) -> None:
    assert edit_mode(correct, wrong)[1] == mode


def test_keyboard_neighbours_touch() -> None:
    kb = load_config()["keyboard"]
    near = keyboard_neighbours(kb["rows"], kb["offsets"])
    assert set(near) == set("abcdefghijklmnopqrstuvwxyz")
    assert set(near["s"]) == set("awedxz")
    assert set(near["g"]) == set("tyfhvb")
    assert set(near["p"]) == set("ol")
    for key, others in near.items():
        assert 2 <= len(others) <= 6, key
        for other in others:
            assert key in near[other], (key, other)  # touching is mutual


def test_listed_misspellings_are_misspellings() -> None:
    m = load_model()
    for word, wrongs in m.misspellings.items():
        for wrong in wrongs:
            assert edit_type(word, wrong) is not None, (word, wrong)
            assert wrong not in m.misspellings, (word, wrong)
            assert wrong.islower() or "'" in wrong, wrong


def test_listed_misspellings_are_used_sometimes() -> None:
    rng = random.Random(5)
    made = [misspell("definitely", rng) for _ in range(400)]
    listed = [x for x in made if x is not None and x.listed]
    assert 0.2 < len(listed) / len(made) < 0.8
    assert {x.wrong for x in listed} <= set(load_model().misspellings["definitely"])
    assert all(x.edits[0].kind == "typo.misspelling" for x in listed)


def test_case_is_kept() -> None:
    rng = random.Random(2)
    for word in ("Tomorrow", "ACCOUNT", "Received"):
        for _ in range(100):
            made = misspell(word, rng)
            assert made is not None
            assert made.wrong[0].isupper()
            assert made.wrong.isupper() == word.isupper()


def test_never_produces_a_blocked_word() -> None:
    rng = random.Random(3)
    common, _ = Counter(x.wrong for x in (misspell("where", rng) for _ in range(300)) if x).most_common(1)[0]
    blocked = dataclasses.replace(
        load_model(), never_produce=frozenset({hashlib.sha256(common.encode()).hexdigest()[:16]})
    )
    again = [misspell("where", rng, model=blocked) for _ in range(300)]
    assert all(x is not None and x.wrong != common for x in again)


def test_generated_mix_matches_the_fitted_one() -> None:
    m = load_model()
    words = sorted(w for w in m.misspellings if len(w) >= 4)
    rng = random.Random(11)
    made = [misspell(w, rng) for _ in range(25) for w in words]
    counts = Counter(x.edit_type for x in made if x is not None)
    assert all(x is not None and edit_type(x.word, x.wrong) == x.edit_type for x in made)
    total = sum(counts.values())
    tvd = sum(abs(counts[t] / total - m.edit_types[t]) for t in EDIT_TYPES) / 2
    assert tvd < 0.03, (dict(counts), m.edit_types)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    index=st.integers(0, 500),
    intensity=st.integers(1, 3),
    channel=st.sampled_from(["mobile_chat", "desktop_chat"]),
)
def test_gold_spans_keep_pointing_at_their_value(
    pack: Pack, user: AgendaUser, seed: int, index: int, intensity: int, channel: str
) -> None:
    agenda = user.start(sample_scenario(pack, seed, index))
    utt = _from_turn(user.next_turn(agenda, None))
    out = TYPO(utt, random.Random(seed), intensity, NoiseContext(pack=pack, channel=channel))
    assert len(out.slots) == len(utt.slots)
    for s in out.slots:
        assert normalize_value(pack.slot(s.slot), out.text[s.start : s.end], pack) == s.value
    _check_edits(out, intensity)


@needs_data
def test_shipped_fit_agrees_with_a_fresh_calibration() -> None:
    shipped = load_config()["fitted"]
    fresh = fit(read_misspellings(WIKIPEDIA))
    assert shipped["pairs"] == fresh["pairs"]
    assert shipped["edit_types"] == pytest.approx(fresh["edit_types"], abs=1e-4)
    for part in ("modes", "edges"):
        for kind, shares in fresh[part].items():
            assert shipped[part][kind] == pytest.approx(shares, abs=1e-4), (part, kind)


@needs_data
def test_real_mix_is_the_published_one() -> None:
    shares = fit(read_misspellings(WIKIPEDIA))["edit_types"]
    published = {"omission": 0.298, "substitution": 0.219, "insertion": 0.162, "transposition": 0.138}
    assert {t: shares[t] for t in published} == pytest.approx(published, abs=1e-3)
    assert shares["multi"] == pytest.approx(0.182, abs=1e-3)
