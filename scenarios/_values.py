"""Slot values: generating canonical values, saying them the way people do, and normalising what was said.

Gold labels store canonical values (amount "45.50", date "2026-03-14", card "4410"); users say them in many
surface forms ("£45.50", "yesterday", "the 14th"); an assistant exposes whatever it understood. Slot checks
normalise both sides with `normalize_value` so that "yesterday" and "2026-03-14" agree when they should.
"""

from __future__ import annotations

import datetime as _dt
import random
import re

from ._models import Pack, SlotSpec, SlotType

_MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
_MONTH_ABBR = {m[:3]: i + 1 for i, m in enumerate(_MONTHS)} | {m: i + 1 for i, m in enumerate(_MONTHS)}
_ROUND_AMOUNTS = [
    5,
    10,
    12,
    15,
    20,
    25,
    30,
    40,
    50,
    60,
    75,
    80,
    100,
    120,
    150,
    200,
    250,
    300,
    450,
    500,
    750,
    1200,
]
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_UNITS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def number_words(n: int) -> str:
    """English words for 0 <= n < 1000 ("a hundred and twenty")."""
    if n < 20:
        return _UNITS[n]
    if n < 100:
        tens, unit = divmod(n, 10)
        return _TENS[tens] + (f"-{_UNITS[unit]}" if unit else "")
    hundreds, rest = divmod(n, 100)
    head = "a hundred" if hundreds == 1 else f"{_UNITS[hundreds]} hundred"
    return head + (f" and {number_words(rest)}" if rest else "")


def _words_to_number(text: str) -> int | None:
    words = text.replace("-", " ").replace(" and ", " ").split()
    if not words:
        return None
    total = 0
    current = 0
    for word in words:
        if word in ("a", "an"):
            current = max(current, 1)
        elif word in _UNITS:
            current += _UNITS.index(word)
        elif word in _TENS[2:]:
            current += 10 * _TENS.index(word)
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word == "thousand":
            total += max(current, 1) * 1000
            current = 0
        else:
            return None
    return total + current


def generate_value(slot: SlotSpec, pack: Pack, rng: random.Random) -> str:
    """A canonical gold value for `slot`, drawn from `rng`."""
    if slot.type is SlotType.CARD_LAST4:
        return f"{rng.randrange(10_000):04d}"
    if slot.type is SlotType.AMOUNT:
        if rng.random() < 0.6:
            return f"{rng.choice(_ROUND_AMOUNTS)}.00"
        return f"{rng.randrange(1, 900)}.{rng.randrange(1, 100):02d}"
    if slot.type is SlotType.DATE:
        return (pack.reference_date - _dt.timedelta(days=rng.choice(range(0, 21)))).isoformat()
    return rng.choice(slot.values)


def render_value(slot: SlotSpec, canonical: str, pack: Pack, rng: random.Random) -> str:
    """One way a person might say `canonical` ("yesterday", "£45.50", "fifty pounds")."""
    if slot.type is SlotType.AMOUNT:
        whole, pence = canonical.split(".")
        value = int(whole)
        options = [f"{pack.currency_symbol}{whole}.{pence}", f"{whole}.{pence}"]
        if pence == "00":
            options += [f"{pack.currency_symbol}{whole}", f"{whole} {pack.currency_word}"]
            if value < 1000 and rng.random() < 0.15:
                return f"{number_words(value)} {pack.currency_word}"
        return rng.choice(options)
    if slot.type is SlotType.DATE:
        day = _dt.date.fromisoformat(canonical)
        delta = (pack.reference_date - day).days
        options = [
            _ordinal(day.day),
            f"the {_ordinal(day.day)}",
            f"{day.day} {_MONTHS[day.month - 1].title()}",
            f"{_MONTHS[day.month - 1].title()} {_ordinal(day.day)}",
            f"{day.day:02d}/{day.month:02d}",
        ]
        if delta == 0:
            options += ["today", "today"]
        elif delta == 1:
            options += ["yesterday", "yesterday"]
        elif 2 <= delta <= 6:
            options.append(f"last {_WEEKDAYS[day.weekday()].title()}")
        return rng.choice(options)
    if slot.type is SlotType.CHOICE:
        return canonical if rng.random() < 0.7 else canonical.lower()
    return canonical


_MONEY_NOISE = re.compile(r"[£$€,]|\b(?:gbp|usd|eur|pounds?|quid|dollars?|euros?|bucks)\b")


def normalize_value(slot: SlotSpec, raw: object, pack: Pack) -> str | None:
    """Canonical form of what a user said or an assistant captured, or `None` if it cannot be read."""
    if raw is None:
        return None
    text = str(raw).strip().lower()
    if not text:
        return None
    if slot.type is SlotType.CARD_LAST4:
        digits = re.sub(r"\D", "", text)
        return digits[-4:] if len(digits) >= 4 else None
    if slot.type is SlotType.AMOUNT:
        return _normalize_amount(text)
    if slot.type is SlotType.DATE:
        day = _normalize_date(text, pack.reference_date)
        return day.isoformat() if day else None
    cleaned = re.sub(r"[^\w\s&'-]", "", text).strip()
    cleaned = re.sub(r"^(?:the|at|from)\s+", "", cleaned)
    for value in slot.values:
        if value.lower() == cleaned:
            return value
    return cleaned or None


def _normalize_amount(text: str) -> str | None:
    stripped = _MONEY_NOISE.sub(" ", text).strip()
    match = re.fullmatch(r"(\d+)(?:\.(\d{1,2}))?", stripped.replace(" ", ""))
    if match:
        pence = (match.group(2) or "0").ljust(2, "0")
        return f"{int(match.group(1))}.{pence}"
    words = _words_to_number(stripped)
    return f"{words}.00" if words is not None else None


def _normalize_date(text: str, today: _dt.date) -> _dt.date | None:
    text = re.sub(r"^(?:on|it was|last)\s+", "", text.strip()).strip(" .")
    if text == "today":
        return today
    if text == "yesterday":
        return today - _dt.timedelta(days=1)
    if text in ("the day before yesterday", "day before yesterday"):
        return today - _dt.timedelta(days=2)
    try:
        return _dt.date.fromisoformat(text)
    except ValueError:
        pass
    if text in _WEEKDAYS:
        back = (today.weekday() - _WEEKDAYS.index(text)) % 7 or 7
        return today - _dt.timedelta(days=back)
    match = re.fullmatch(r"(?:the\s+)?(\d{1,2})(?:st|nd|rd|th)?", text)
    if match:
        return _latest(today, today.month, int(match.group(1)), month_fixed=False)
    match = re.fullmatch(r"(\d{1,2})/(\d{1,2})(?:/\d{2,4})?", text)
    if match:
        return _latest(today, int(match.group(2)), int(match.group(1)), month_fixed=True)
    match = re.fullmatch(r"(?:the\s+)?(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?([a-z]+)", text) or re.fullmatch(
        r"([a-z]+)\s+(?:the\s+)?(\d{1,2})(?:st|nd|rd|th)?", text
    )
    if match:
        first, second = match.groups()
        day_s, month_s = (first, second) if first.isdigit() else (second, first)
        month = _MONTH_ABBR.get(month_s)
        if month:
            return _latest(today, month, int(day_s), month_fixed=True)
    return None


def _latest(today: _dt.date, month: int, day: int, *, month_fixed: bool) -> _dt.date | None:
    """The most recent date on or before `today` with this day (and month, when fixed)."""
    for back in range(0, 13):
        year, mon = divmod(today.year * 12 + today.month - 1 - back, 12)
        mon += 1
        if month_fixed and mon != month:
            continue
        try:
            candidate = _dt.date(year, mon, day)
        except ValueError:
            continue
        if candidate <= today:
            return candidate
    return None


_CARD_MENTION = re.compile(r"(?<![\d.£$€])\d{4}(?!\d|\.\d)")
_AMOUNT_MENTION = re.compile(
    r"[£$€]\s?\d[\d,]*(?:\.\d{1,2})?|\b\d+(?:\.\d{1,2})?\s*(?:pounds|quid|dollars)\b", re.IGNORECASE
)
_MONTH_WORD = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*"
_DATE_MENTION = re.compile(
    r"\b(?:today|yesterday|(?:last\s+)?(?:mon|tues|wednes|thurs|fri|satur|sun)day"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH_WORD}|{_MONTH_WORD}\s+\d{{1,2}}(?:st|nd|rd|th)?"
    r"|\d{1,2}/\d{1,2}(?:/\d{2,4})?|(?:the\s+)?\d{1,2}(?:st|nd|rd|th)|\d{4}-\d{2}-\d{2})\b",
    re.IGNORECASE,
)


def mentions(slot: SlotSpec, text: str, pack: Pack) -> list[str]:
    """Canonical values of `slot` that `text` mentions, as a careful reader would find them.

    A simulated user reads an assistant's summary with this ("Just to confirm: £45 at Tesco on the 14th")
    to decide whether to agree or correct it.
    """
    if slot.type is SlotType.CHOICE:
        # Whole words only, and a value inside a longer one found at the same place does not count:
        # "Uber Eats" is not "Uber", "free" does not contain "EE".
        lowered = text.casefold()
        spans = []
        for value in slot.values:
            for m in re.finditer(rf"(?<!\w){re.escape(value.casefold())}(?!\w)", lowered):
                spans.append((m.start(), m.end(), value))
        return [
            v
            for s, e, v in spans
            if not any(s2 <= s and e <= e2 and (s2, e2) != (s, e) for s2, e2, _ in spans)
        ]
    pattern = {
        SlotType.CARD_LAST4: _CARD_MENTION,
        SlotType.AMOUNT: _AMOUNT_MENTION,
        SlotType.DATE: _DATE_MENTION,
    }[slot.type]
    found = (normalize_value(slot, m.group(0), pack) for m in pattern.finditer(text))
    return [v for v in found if v is not None]
