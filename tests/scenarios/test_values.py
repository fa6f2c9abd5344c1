"""Slot values: generation, surface forms, normalisation, mentions (reference date 2026-03-16, a Monday)."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from botdrill.scenarios import Pack, SlotType, generate_value, mentions, normalize_value, render_value

SLOT_NAMES = ["card_last4", "amount", "merchant", "date", "payee", "biller", "postcode", "branch"]


# -- amounts ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("£45.50", "45.50"),
        ("45.5 pounds", "45.50"),
        ("fifty pounds", "50.00"),
        ("£1,200", "1200.00"),
        ("£45", "45.00"),
        ("45", "45.00"),
        ("45 quid", "45.00"),
        ("GBP 12.05", "12.05"),
        ("a hundred and twenty pounds", "120.00"),
        ("seventy-five pounds", "75.00"),
        ("two thousand", "2000.00"),
        ("  £7.1  ", "7.10"),
    ],
)
def test_normalize_amount(pack: Pack, raw: str, canonical: str) -> None:
    assert normalize_value(pack.slot("amount"), raw, pack) == canonical


@pytest.mark.parametrize("raw", ["lots", "£45.505", "1.234", "", "   ", None, "about a tenner"])
def test_normalize_amount_unreadable(pack: Pack, raw: str | None) -> None:
    assert normalize_value(pack.slot("amount"), raw, pack) is None


# -- dates ------------------------------------------------------------------------------------------


def test_reference_date_is_a_monday(pack: Pack) -> None:
    # The weekday cases below rely on it.
    assert pack.reference_date == dt.date(2026, 3, 16)
    assert pack.reference_date.weekday() == 0


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("yesterday", "2026-03-15"),
        ("Yesterday.", "2026-03-15"),
        ("today", "2026-03-16"),
        ("the day before yesterday", "2026-03-14"),
        ("the 14th", "2026-03-14"),
        ("14th", "2026-03-14"),
        ("on the 3rd", "2026-03-03"),
        ("the 20th", "2026-02-20"),  # no 20 March yet: the latest 20th is in February
        ("14 March", "2026-03-14"),
        ("March 14th", "2026-03-14"),
        ("the 14th of March", "2026-03-14"),
        ("mar 14", "2026-03-14"),
        ("14 Feb", "2026-02-14"),
        ("20 March", "2025-03-20"),  # still to come this year: last year's
        ("14/03", "2026-03-14"),
        ("14/03/2026", "2026-03-14"),
        ("last Monday", "2026-03-09"),  # today is a Monday: last Monday is a week ago
        ("last Saturday", "2026-03-14"),
        ("Sunday", "2026-03-15"),
        ("2026-03-14", "2026-03-14"),
        ("it was yesterday", "2026-03-15"),
    ],
)
def test_normalize_date(pack: Pack, raw: str, canonical: str) -> None:
    assert normalize_value(pack.slot("date"), raw, pack) == canonical


@pytest.mark.parametrize("raw", ["garbage", "march", "31/02", "the 45th", ""])
def test_normalize_date_unreadable(pack: Pack, raw: str) -> None:
    assert normalize_value(pack.slot("date"), raw, pack) is None


# -- cards and choices ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("4410", "4410"),
        ("0042", "0042"),
        ("card ending 4410", "4410"),
        ("1234 5678 9012 3456", "3456"),
        ("ends in 9-9-0-1", "9901"),
    ],
)
def test_normalize_card(pack: Pack, raw: str, canonical: str) -> None:
    assert normalize_value(pack.slot("card_last4"), raw, pack) == canonical


@pytest.mark.parametrize("raw", ["123", "no idea", ""])
def test_normalize_card_unreadable(pack: Pack, raw: str) -> None:
    assert normalize_value(pack.slot("card_last4"), raw, pack) is None


@pytest.mark.parametrize(
    ("slot", "raw", "canonical"),
    [
        ("merchant", "tesco", "Tesco"),
        ("merchant", "TESCO", "Tesco"),
        ("merchant", "at Tesco.", "Tesco"),
        ("merchant", "the Tesco", "Tesco"),
        ("merchant", "marks & spencer", "Marks & Spencer"),
        ("merchant", "SAINSBURY'S", "Sainsbury's"),
        ("merchant", "EBAY", "eBay"),
        ("payee", "MY LANDLORD", "my landlord"),
        ("postcode", "sw1a 1aa", "SW1A 1AA"),
        ("branch", "leeds", "Leeds"),
    ],
)
def test_normalize_choice_is_case_insensitive(pack: Pack, slot: str, raw: str, canonical: str) -> None:
    assert normalize_value(pack.slot(slot), raw, pack) == canonical


def test_normalize_choice_unknown_value_is_cleaned_not_invented(pack: Pack) -> None:
    merchant = pack.slot("merchant")
    assert normalize_value(merchant, "Corner Shop!", pack) == "corner shop"
    assert normalize_value(merchant, "!!!", pack) is None


# -- round trip -------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None, database=None)
@given(seed=st.integers(min_value=0, max_value=2**64), name=st.sampled_from(SLOT_NAMES))
def test_render_then_normalize_gives_back_the_canonical_value(pack: Pack, seed: int, name: str) -> None:
    slot = pack.slot(name)
    rng = random.Random(seed)
    canonical = generate_value(slot, pack, rng)
    said = render_value(slot, canonical, pack, rng)
    assert said.strip()
    assert normalize_value(slot, said, pack) == canonical
    # Normalising a canonical value leaves it alone.
    assert normalize_value(slot, canonical, pack) == canonical


@settings(max_examples=100, deadline=None, database=None)
@given(seed=st.integers(min_value=0, max_value=2**64))
def test_generated_values_are_canonical(pack: Pack, seed: int) -> None:
    rng = random.Random(seed)
    card = generate_value(pack.slot("card_last4"), pack, rng)
    assert len(card) == 4 and card.isdigit()
    amount = generate_value(pack.slot("amount"), pack, rng)
    whole, pence = amount.split(".")
    assert whole.isdigit() and int(whole) >= 1 and len(pence) == 2 and pence.isdigit()
    day = dt.date.fromisoformat(generate_value(pack.slot("date"), pack, rng))
    assert dt.timedelta(0) <= pack.reference_date - day <= dt.timedelta(days=20)
    for slot in pack.slots:
        if slot.type is SlotType.CHOICE:
            assert generate_value(slot, pack, rng) in slot.values


def test_every_date_surface_form_reads_back(pack: Pack) -> None:
    # Exhaustive over the dates generate_value can produce and many draws of the surface form.
    date = pack.slot("date")
    rng = random.Random(0)
    for back in range(21):
        canonical = (pack.reference_date - dt.timedelta(days=back)).isoformat()
        forms = {render_value(date, canonical, pack, rng) for _ in range(60)}
        for form in forms:
            assert normalize_value(date, form, pack) == canonical, form


def test_render_value_varies(pack: Pack) -> None:
    amount = pack.slot("amount")
    rng = random.Random(1)
    forms = {render_value(amount, "50.00", pack, rng) for _ in range(200)}
    assert {"£50.00", "50.00", "£50", "50 pounds", "fifty pounds"} <= forms


# -- mentions ---------------------------------------------------------------------------------------

SUMMARY = "Just to confirm: an amount of £45.50, a payment to Tesco, on the 14th. Is that right?"


@pytest.mark.parametrize(
    ("slot", "expected"),
    [
        ("amount", ["45.50"]),
        ("merchant", ["Tesco"]),
        ("date", ["2026-03-14"]),
        ("card_last4", []),
        ("payee", []),
    ],
)
def test_mentions_in_confirmation(pack: Pack, slot: str, expected: list[str]) -> None:
    assert mentions(pack.slot(slot), SUMMARY, pack) == expected


@pytest.mark.parametrize(
    ("slot", "text", "expected"),
    [
        ("card_last4", "Just to confirm: the card ending 4410, is that right?", ["4410"]),
        ("card_last4", "an amount of £1234.00 on card 12345", []),
        ("amount", "Done: 20 pounds is on its way to my mum.", ["20.00"]),
        ("amount", "Shall I pay £1,200 to British Gas?", ["1200.00"]),
        ("date", "Just to confirm: yesterday, is that right?", ["2026-03-15"]),
        ("date", "Just to confirm: £20 on 14 March. Is that right?", ["2026-03-14"]),
        ("date", "Can you confirm the payment on 14/03?", ["2026-03-14"]),
        ("payee", "Send £20 to Sarah Jones, is that right?", ["Sarah Jones"]),
        ("merchant", "a payment to tesco", ["Tesco"]),
    ],
)
def test_mentions_cases(pack: Pack, slot: str, text: str, expected: list[str]) -> None:
    assert mentions(pack.slot(slot), text, pack) == expected


def test_mentions_card_at_end_of_sentence(pack: Pack) -> None:
    text = "Just to confirm: the card ending 4410. Is that right?"
    assert mentions(pack.slot("card_last4"), text, pack) == ["4410"]


@pytest.mark.parametrize(
    "text",
    [
        "Just to confirm: transactions from 14 March. Is that right?",
        "Just to confirm: a payment to Tesco dated 14 March. Is that right?",
    ],
)
def test_mentions_date_after_a_word(pack: Pack, text: str) -> None:
    assert mentions(pack.slot("date"), text, pack) == ["2026-03-14"]


@pytest.mark.parametrize(
    ("slot", "text", "expected"),
    [
        ("biller", "Just to confirm: £20.00 to British Gas, free of charge. Is that right?", ["British Gas"]),
        ("merchant", "Just to confirm: a payment to Uber Eats. Is that right?", ["Uber Eats"]),
    ],
)
def test_mentions_choice_whole_words(pack: Pack, slot: str, text: str, expected: list[str]) -> None:
    assert mentions(pack.slot(slot), text, pack) == expected
