"""PII scrubbing: what is recognised (and what is not), surrogates that stay valid, consistent and
deterministic, and annotation spans that still point at the same words after the replacements."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from botdrill.analysis._pii import (
    PII_KINDS,
    PIIError,
    PIIMatch,
    Scrubbed,
    Surrogates,
    _resolve,
    find_pii,
    scrub,
    scrub_many,
)
from botdrill.scenarios import BotdrillError

POSITIVE = [
    ("card_number", "4111 1111 1111 1111"),
    ("card_number", "4111111111111111"),
    ("card_number", "5555-5555-5555-4444"),
    ("card_number", "3782 822463 10005"),
    ("card_number", "4222222222222"),
    ("card_number", "6000000000000000004"),
    ("iban", "GB82 WEST 1234 5698 7654 32"),
    ("iban", "GB82WEST12345698765432"),
    ("iban", "gb82 west 1234 5698 7654 32"),
    ("iban", "DE89 3704 0044 0532 0130 00"),
    ("iban", "FR14 2004 1010 0505 0001 3M02 606"),
    ("iban", "ES91 2100 0418 4502 0005 1332"),
    ("iban", "IT60 X054 2811 1010 0000 0123 456"),
    ("iban", "NL91 ABNA 0417 1643 00"),
    ("iban", "IE29 AIBK 9311 5212 3456 78"),
    ("iban", "BE68 5390 0754 7034"),
    ("iban", "CH93 0076 2011 6238 5295 7"),
    ("email", "jane.doe+bank@mail.example.co.uk"),
    ("email", "J_Smith@Example.org"),
    ("phone", "+44 7700 900123"),
    ("phone", "+44 (0)20 7946 0018"),
    ("phone", "+1 (555) 123-4567"),
    ("phone", "+33 6 12 34 56 78"),
    ("phone", "+4915123456789"),
    ("phone", "07700 900123"),
    ("phone", "07700900123"),
    ("phone", "020 7946 0018"),
    ("phone", "(020) 7946 0018"),
    ("phone", "(555) 123-4567"),
    ("phone", "555-123-4567"),
    ("national_id", "AB 12 34 56 C"),
    ("national_id", "AB123456C"),
    ("national_id", "ab 123456 d"),
    ("national_id", "123-45-6789"),
]

NEGATIVE = [
    "the card ending 1234",
    "a refund of £1,250.00 and $45",
    "on 12/03/2026 or 2026-03-12 or 12.03.2026",
    "at 10:30 or 09:15:00",
    "sort code 20-00-00",
    "sort code 20-00-00 account 12345678",
    "reference 48213, case 0042",
    "card 4111111111111112",  # 16 digits, fails Luhn
    "card 4111 1111 1111 1112",
    "GB83 WEST 1234 5698 7654 32",  # bad check digits
    "GB82 WEST 1234 5698 7654 3",  # too short for GB
    "write to foo@bar or @handle",
    "DA 12 34 56 C",  # D is never a prefix letter
    "AO 12 34 56 C",  # O is never the second
    "GB 12 34 56 C",
    "TN 12 34 56 C",
    "AB 12 34 56 E",  # suffix is A-D
    "000-12-3456 666-12-3456 912-34-5678 123-00-4567 123-45-0000",
    "call 0044 or 01234",
    "+44 12",
    "version 3.14159265358979",
]

SAMPLE_TEXT = "Card 4111 1111 1111 1111, mail jo@example.net, call +44 7700 900123, NI AB 12 34 56 C."


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _iban_ok(compact: str) -> bool:
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _shape(text: str) -> str:
    return re.sub(r"[A-Za-z]", "a", re.sub(r"\d", "9", text))


@pytest.mark.parametrize(("kind", "value"), POSITIVE)
def test_each_recogniser_finds_its_values_in_a_sentence(kind: str, value: str) -> None:
    text = f"Hi, it is {value}. Thanks"
    assert find_pii(text) == [PIIMatch(kind, 10, 10 + len(value), value)]
    assert find_pii(value) == [PIIMatch(kind, 0, len(value), value)]


@pytest.mark.parametrize("text", NEGATIVE)
def test_numbers_that_are_not_personal_data_are_left_alone(text: str) -> None:
    assert find_pii(text) == []
    s = scrub(text, Surrogates("k"), [(0, len(text))])
    assert (s.text, s.spans, s.replaced) == (text, ((0, len(text)),), {})


def test_a_card_followed_by_its_expiry_or_another_number_is_still_found() -> None:
    assert [m.text for m in find_pii("4111 1111 1111 1111 12/28 and 1234 4111 1111 1111 1111")] == [
        "4111 1111 1111 1111",
        "4111 1111 1111 1111",
    ]
    assert [m.text for m in find_pii("BE68 5390 0754 7034 with DE89 3704 0044 0532 0130 00 thanks")] == [
        "BE68 5390 0754 7034",
        "DE89 3704 0044 0532 0130 00",
    ]


def test_matches_are_sorted_and_do_not_overlap() -> None:
    text = f"{SAMPLE_TEXT} Or 4111111111111111@example.com, 555-123-4567."
    matches = find_pii(text)
    assert [m.kind for m in matches] == ["card_number", "email", "phone", "national_id", "email", "phone"]
    assert all(a.end <= b.start for a, b in itertools.pairwise(matches))
    assert all(text[m.start : m.end] == m.text for m in matches)


def test_overlaps_go_to_the_longest_then_by_kind_order() -> None:
    assert _resolve([("card_number", 0, 16), ("email", 0, 28)]) == [("email", 0, 28)]
    assert _resolve(
        [("phone", 3, 13), ("national_id", 3, 13), ("iban", 20, 40), ("card_number", 19, 39)]
    ) == [
        ("national_id", 3, 13),
        ("card_number", 19, 39),
    ]
    order = ["card_number", "iban", "email", "national_id", "phone"]
    for better, worse in itertools.pairwise(order):
        assert _resolve([(worse, 0, 9), (better, 0, 9)]) == [(better, 0, 9)]


@pytest.mark.parametrize(("kind", "value"), POSITIVE)
def test_surrogates_keep_the_shape_and_pass_their_own_recogniser(kind: str, value: str) -> None:
    new = Surrogates("batch-1/d-1").surrogate(kind, value)
    assert new != value
    assert find_pii(new) == [PIIMatch(kind, 0, len(new), new)]
    assert find_pii(f"Hi, it is {new}. Thanks") == [PIIMatch(kind, 10, 10 + len(new), new)]
    if kind != "email":
        assert _shape(new).upper() == _shape(value).upper()


@pytest.mark.parametrize(("kind", "value"), [kv for kv in POSITIVE if kv[0] == "card_number"])
def test_card_surrogates_are_luhn_valid_cards_of_the_same_network(kind: str, value: str) -> None:
    for key in ("a", "b", "c"):
        digits = re.sub(r"\D", "", Surrogates(key).surrogate(kind, value))
        old = re.sub(r"\D", "", value)
        assert _luhn_ok(digits)
        assert (len(digits), digits[:2]) == (len(old), old[:2])
        assert digits != old


@pytest.mark.parametrize(("kind", "value"), [kv for kv in POSITIVE if kv[0] == "iban"])
def test_iban_surrogates_have_valid_check_digits_for_the_same_country(kind: str, value: str) -> None:
    compact = Surrogates("a").surrogate(kind, value).replace(" ", "").upper()
    old = value.replace(" ", "").upper()
    assert _iban_ok(compact)
    assert (compact[:2], len(compact)) == (old[:2], len(old))
    assert compact != old


def test_national_id_surrogates_use_issued_prefixes_and_ranges() -> None:
    for i in range(200):
        s = Surrogates(f"d-{i}")
        ni = s.surrogate("national_id", "AB 12 34 56 C")
        assert re.fullmatch(r"[A-Z]{2} \d\d \d\d \d\d [A-D]", ni)
        assert not set(ni[:2]) & set("DFIQUV") and ni[1] != "O"
        assert ni[:2] not in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}
        area, group, serial = s.surrogate("national_id", "123-45-6789").split("-")
        assert area not in ("000", "666") and int(area) < 900 and group != "00" and serial != "0000"


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        ("07700 900123", r"07700 900\d{3}"),
        ("+44 7700 900123", r"\+44 7700 900\d{3}"),
        ("020 7946 0018", r"020 7946 0\d{3}"),
        ("+44 (0)20 7946 0018", r"\+44 \(0\)20 7946 0\d{3}"),
        ("0113 496 0123", r"0163 296 0\d{3}"),  # 01632 960xxx written in the original's grouping
        ("(555) 123-4567", r"\([2-9]\d\d\) 555-01\d\d"),
        ("+1 212 555 9876", r"\+1 [2-9]\d\d 555 01\d\d"),
        ("+33 6 12 34 56 78", r"\+33 6 \d\d \d\d \d\d \d\d"),
    ],
)
def test_phone_surrogates_come_from_fictional_ranges_where_there_are_some(value: str, pattern: str) -> None:
    assert re.fullmatch(pattern, Surrogates("k").surrogate("phone", value))


def test_email_surrogates_use_reserved_domains() -> None:
    s = Surrogates("k")
    assert re.fullmatch(r"user\d+@example\.com", s.surrogate("email", "jo@mail.co.uk"))
    assert re.fullmatch(r"user\d+@example\.org", s.surrogate("email", "jo@charity.ORG"))
    assert re.fullmatch(r"user\d+@example\.net", s.surrogate("email", "jo@isp.net"))


def test_surrogates_are_deterministic_per_key_and_differ_between_keys() -> None:
    card = "4111 1111 1111 1111"
    assert Surrogates("batch-1/d-7").surrogate("card_number", card) == Surrogates("batch-1/d-7").surrogate(
        "card_number", card
    )
    # pinned: the generator is seeded from SHA-256 of the key, never from Python's per-process hash()
    assert Surrogates("batch-1/d-7").surrogate("card_number", card) == "4185 7941 5159 3933"
    assert len({Surrogates(f"batch-1/d-{i}").surrogate("card_number", card) for i in range(50)}) == 50
    assert len({Surrogates(f"batch-1/d-{i}").surrogate("iban", POSITIVE[6][1]) for i in range(50)}) == 50
    first = scrub_many([(SAMPLE_TEXT, ())], "b/d")[0][0].text
    assert (
        first
        == scrub_many([(SAMPLE_TEXT, ())], "b/d")[0][0].text
        != scrub_many([(SAMPLE_TEXT, ())], "b/e")[0][0].text
    )


def test_one_dialogue_keeps_one_surrogate_per_value() -> None:
    s = Surrogates("k")
    a = s.surrogate("card_number", "4111 1111 1111 1111")
    assert s.surrogate("card_number", "4111111111111111") == a.replace(" ", "")
    assert s.surrogate("card_number", "4111-1111-1111-1111") == a.replace(" ", "-")
    assert s.surrogate("card_number", "5555 5555 5555 4444") not in (a,)
    assert s.surrogate("email", "Jo@Example.net") == s.surrogate("email", "jo@example.NET")
    assert s.surrogate("email", "a@bc.com") != s.surrogate("email", "ab@c.com")
    # the same phone number written nationally and internationally
    assert s.surrogate("phone", "07700 900123")[1:] == s.surrogate("phone", "+44 7700 900123")[4:]
    assert s.surrogate("phone", "07700 900123") != s.surrogate("phone", "07700 900124")


def test_a_used_up_fictional_range_falls_back_to_distinct_random_numbers() -> None:
    s = Surrogates("k")
    new = {s.surrogate("phone", f"07{n:09d}") for n in range(1100)}
    assert len(new) == 1100
    assert sum(x.startswith("07700900") for x in new) >= 900
    assert all(find_pii(x) == [PIIMatch("phone", 0, 11, x)] for x in new)


def test_surrogate_refuses_unknown_kinds_and_values_without_repeating_them() -> None:
    s = Surrogates("k")
    with pytest.raises(PIIError, match="unknown kind"):
        s.surrogate("passport", "123456789")
    with pytest.raises(PIIError, match="not a recognisable card_number") as info:
        s.surrogate("card_number", "4111111111111112")
    assert "4111" not in str(info.value)
    assert isinstance(info.value, BotdrillError) and info.value.code == "pii_invalid"


def test_counts_per_kind() -> None:
    text = f"{SAMPLE_TEXT} Again: 4111111111111111 and 5555-5555-5555-4444, 123-45-6789."
    s = scrub(text, Surrogates("k"))
    assert s.replaced == {"card_number": 3, "email": 1, "phone": 1, "national_id": 2}
    assert list(s.replaced) == [k for k in PII_KINDS if k in s.replaced]
    assert find_pii(s.text) and "4111" not in s.text and "jo@example.net" not in s.text
    results, totals = scrub_many(
        [(SAMPLE_TEXT, ()), ("no data here", ()), ("my card is 4111111111111111", ())], "k"
    )
    assert [r.replaced for r in results][1] == {}
    assert totals == {"card_number": 2, "email": 1, "phone": 1, "national_id": 1}
    # the card of the first turn keeps its surrogate in the third
    card = find_pii(results[0].text)[0].text.replace(" ", "")
    assert results[2].text == f"my card is {card}"


def test_spans_move_grow_and_extend() -> None:
    text = "mail bob.smith@mail.example.org now, thanks"
    email = (5, 31)
    assert text[slice(*email)] == "bob.smith@mail.example.org"
    spans = [email, (0, 4), (32, 35), (36, 42), (10, 20), (0, 12), (25, 35), (5, 35)]
    s = scrub(text, Surrogates("k"), spans)
    new_email = (5, s.text.index(" now"))
    assert re.fullmatch(r"user\d+@example\.org", s.text[slice(*new_email)])
    shift = new_email[1] - email[1]
    assert s.spans == (
        new_email,  # exactly the value: exactly the surrogate
        (0, 4),  # before: unchanged
        (32 + shift, 35 + shift),  # after: shifted
        (36 + shift, 42 + shift),
        new_email,  # inside the value: the whole surrogate
        (0, new_email[1]),  # partly over it: extended over the whole surrogate
        (new_email[0], 35 + shift),
        (5, 35 + shift),  # containing it: grows or shrinks with it
    )
    assert s.text[s.spans[2][0] : s.spans[2][1]] == "now"


@pytest.mark.parametrize("span", [(-1, 3), (3, 2), (0, 99)])
def test_spans_outside_the_text_are_refused(span: tuple[int, int]) -> None:
    with pytest.raises(PIIError, match="not within"):
        scrub("card 4111111111111111", Surrogates("k"), [span])


WORDS = [
    "I",
    "lost",
    "my",
    "card",
    "ending",
    "1234",
    "£1,250.00",
    "on",
    "12/03/2026",
    "20-00-00",
    "ref",
    "77",
]
PII = [value for _, value in POSITIVE]


@st.composite
def _texts_with_spans(draw: st.DrawFn) -> tuple[str, list[tuple[int, int]]]:
    parts = draw(st.lists(st.sampled_from(WORDS + PII), max_size=10))
    seps = draw(
        st.lists(st.sampled_from([" ", ", ", ". ", "\n", " - "]), min_size=len(parts), max_size=len(parts))
    )
    text = "".join(p + s for p, s in zip(parts, seps, strict=True))
    bound = st.integers(0, len(text))
    pairs = draw(st.lists(st.tuples(bound, bound), max_size=8))
    return text, [(min(a, b), max(a, b)) for a, b in pairs]


@settings(max_examples=200, deadline=None, database=None)
@given(_texts_with_spans(), st.sampled_from(["k1", "k2"]))
def test_spans_clear_of_the_data_keep_their_text(case: tuple[str, list[tuple[int, int]]], key: str) -> None:
    text, spans = case
    matches = find_pii(text)
    result = scrub(text, Surrogates(key), spans)
    # replay the replacements with a twin generator to know each surrogate and where it lands
    twin = Surrogates(key)
    expected, at, placed = "", 0, []
    for m in matches:
        new = twin.surrogate(m.kind, m.text)
        expected += text[at : m.start]
        placed.append((len(expected), len(expected) + len(new)))
        expected += new
        at = m.end
    expected += text[at:]
    assert result.text == expected
    assert sum(result.replaced.values()) == len(matches)
    assert len(result.spans) == len(spans)
    for (
        (s, e),
        (ns, ne),
    ) in zip(spans, result.spans, strict=True):
        assert 0 <= ns <= ne <= len(result.text)
        hit = [i for i, m in enumerate(matches) if s < m.end and m.start < e]
        if not hit:
            assert result.text[ns:ne] == text[s:e]
        for i in hit:  # every value the span touched is now covered whole by it
            assert ns <= placed[i][0] and placed[i][1] <= ne
        if hit and all(s <= matches[i].start and matches[i].end <= e for i in hit):
            old = text[s:e]
            for i in reversed(hit):
                m = matches[i]
                old = old[: m.start - s] + result.text[slice(*placed[i])] + old[m.end - s :]
            assert result.text[ns:ne] == old


def test_scrubbed_is_frozen() -> None:
    s = scrub("nothing", Surrogates("k"))
    assert s == Scrubbed("nothing", (), {})
    with pytest.raises(AttributeError):
        s.text = "x"  # type: ignore[misc]
