"""The reference assistant's slot filler: regular expressions and gazetteers, with the gaps real ones have.

It returns the surface text it found (for example "yesterday" or "£45"), not a canonical value; botdrill
normalises captured values when it checks them, as it would for any assistant under test.
"""

from __future__ import annotations

import re

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:tember)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DAYNUM = r"\d{1,2}(?:st|nd|rd|th)?"
_DATE = re.compile(
    rf"\b(today|yesterday|(?:last\s+)?(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
    rf"|{_DAYNUM}\s+(?:of\s+)?{_MONTH}|{_MONTH}\s+{_DAYNUM}|\d{{1,2}}/\d{{1,2}}(?:/\d{{2,4}})?"
    rf"|the\s+{_DAYNUM})\b",
    re.IGNORECASE,
)
_BARE_DAY = re.compile(rf"^\s*(?:on\s+)?(?:the\s+)?({_DAYNUM})\s*[.!]?\s*$", re.IGNORECASE)
_MONEY = re.compile(
    r"([£$€]\s?\d+(?:,\d{3})*(?:\.\d{1,2})?|\d+(?:\.\d{1,2})?\s*(?:pounds|quid|gbp|dollars))", re.IGNORECASE
)
_NUMBER = re.compile(r"\b\d+(?:\.\d{1,2})?\b")
_FOUR_DIGITS = re.compile(r"(?<![\d.£$])(\d{4})(?![\d.])")
_POSTCODE = re.compile(r"\b([A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2})\b", re.IGNORECASE)
_LEAD = re.compile(
    r"^(?:(?:um+|uh+|er+|so|well|ok(?:ay)?|yes|yeah|it(?:'s| is| was)|that(?:'s| is| was)|i think|"
    r"the payment was|payment was|the|to|at|from|with|in|for|please|send it to|pay)\b[\s,]*)+",
    re.IGNORECASE,
)

_TRAIL = re.compile(r"(?:[\s,]+(?:please|thanks|thank you|cheers|branch|one))+$", re.IGNORECASE)


def extract(slot: str, text: str, *, awaited: bool, gazetteer: dict[str, list[str]]) -> str | None:
    """The surface value of `slot` in `text`, or `None`.

    Args:
        slot: slot name (`card_last4`, `amount`, `date`, `merchant`, ...).
        text: the user's message.
        awaited: whether the assistant just asked for this slot, which licenses looser patterns
            (a bare number is an amount, a short phrase is a payee).
        gazetteer: known values per slot, found anywhere in a message.
    """
    if slot == "card_last4":
        if awaited or re.search(r"\b(card|ending|ends|last four|last 4)\b", text, re.IGNORECASE):
            match = _FOUR_DIGITS.search(text)
            return match.group(1) if match else None
        return None
    if slot == "amount":
        match = _MONEY.search(text)
        if match:
            return match.group(1)
        if awaited:
            number = _NUMBER.search(text)
            return number.group(0) if number else None
        return None
    if slot == "date":
        match = _DATE.search(text)
        if match:
            return match.group(1)
        bare = _BARE_DAY.match(text) if awaited else None
        return bare.group(1) if bare else None
    if slot == "postcode":
        match = _POSTCODE.search(text)
        return match.group(1).upper() if match else None
    lowered = text.lower()
    for value in gazetteer.get(slot, []):
        if re.search(rf"(?<!\w){re.escape(value.lower())}(?!\w)", lowered):
            return value
    if awaited:
        return _short_answer(text)
    return None


def _short_answer(text: str) -> str | None:
    """A short free-text answer with its lead-in words stripped ("it was at Greggs" -> "Greggs")."""
    cleaned = _TRAIL.sub("", _LEAD.sub("", text.strip()).strip(" .!?,")).strip(" .!?,")
    if not cleaned or len(cleaned.split()) > 4:
        return None
    return cleaned
