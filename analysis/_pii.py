"""Personal data in training transcripts: find it, replace it with surrogates, keep the annotations true.

Seed examples copied from real logs can carry a real card number, IBAN, e-mail address, phone number or
national id, and generated turns can echo them. Before a batch is stored or exported, botdrill replaces
each one with a *surrogate*: a made-up value of the same kind and shape (the same grouping and length, and
valid for the same recogniser), so a model trained on the batch still sees realistic slot values while
no real one survives. Gold slot spans are character offsets into the text, so they are moved with it.

Recognition prefers precision to recall: every candidate must pass its checksum or registry rule (Luhn for
cards, mod-97 and the country's length for IBANs, the issuing rules for UK National Insurance numbers and
US Social Security numbers), and digit runs that merely look numeric - card endings, amounts, dates,
times, sort codes, short references - are left alone. Where candidates overlap, the longest wins, then
the first of card, IBAN, e-mail, national id, phone.

Surrogates are drawn from a `random.Random` seeded with the SHA-256 of a key (a batch id and a dialogue
id, say), never from Python's salted `hash()`, so a rerun gives byte-identical output. Within one
`Surrogates` object the same value always gets the same surrogate and different values get different
ones, so a dialogue that mentions a card twice still talks about one card. Values are compared on their
letters and digits, case-folded; a phone number also across its national and international forms, and an
e-mail address on case alone (its dots and `@` tell addresses apart). A surrogate depends on the key and
on the order in which values are first met, and of the value itself only on what is kept on purpose: its
shape, a card's first two digits (its network), an IBAN's country and where its letters are, a phone
number's country code and the first digit of its national number (mobile or fixed).

Example:
    >>> s = scrub("Card 4111 1111 1111 1111, please.", Surrogates("batch-1/d-7"), [(5, 24)])
    >>> s.replaced
    {'card_number': 1}
    >>> s.text[s.spans[0][0] : s.spans[0][1]] != "4111 1111 1111 1111"
    True
"""

from __future__ import annotations

import hashlib
import random
import re
import string
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from botdrill.scenarios import BotdrillError

PII_KINDS = ("card_number", "iban", "email", "phone", "national_id")
"""The kinds of personal data botdrill recognises, as they appear in `PIIMatch.kind` and the counts."""

# Overlapping candidates of equal length: the first kind here wins.
_PRIORITY = {"card_number": 0, "iban": 1, "email": 2, "national_id": 3, "phone": 4}

# IBAN lengths from the SWIFT IBAN registry; a country not listed is accepted at 15-34 characters.
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18,
    "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GI": 23, "GR": 27, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18,
    "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SA": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TR": 26,
}  # fmt: skip

# E.164 country codes: 1 and 7 have one digit, these have two, every other has three.
_TWO_DIGIT_CODES = frozenset(
    str(n)
    for n in (20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49, 51, 52, 53, 54, 55,
              56, 57, 58, 60, 61, 62, 63, 64, 65, 66, 81, 82, 84, 86, 90, 91, 92, 93, 94, 95, 98)
)  # fmt: skip

# UK National Insurance prefixes: neither letter D, F, I, Q, U or V, the second not O, and never these.
_NI_BAD_LETTERS = frozenset("DFIQUV")
_NI_BAD_PREFIXES = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})

# Ofcom's numbers for drama (never allocated to a subscriber): a UK national significant number's leading
# digits -> the reserved block that replaces it, with the last three digits drawn (1,000 numbers each).
_UK_DRAMA = (
    ("7", "7700900"),  # 07700 900000-900999, mobiles
    ("20", "2079460"),  # 020 7946 0000-0999, London
    ("1", "1632960"),  # 01632 960000-960999, a fictional area code
    ("2", "1632960"),
    ("3", "3069990"),  # 0306 999 0000-0999
    ("80", "8081570"),  # 0808 157 0000-0999, freephone
    ("90", "9098790"),  # 0909 879 0000-0999, premium rate
)
_RESERVED_TRIES = 50  # draws inside a reserved block before falling back to random digits

_A = re.ASCII
# Each pattern is tried at every position (inside a lookahead), so a candidate that fails its check cannot
# hide a valid one starting a few characters later; the boundaries and checks are applied in code.
_CARD_PATTERNS = tuple(
    re.compile(f"(?=(?P<m>{p}))", _A)
    for p in (
        r"\d{13,19}",
        r"\d{4}(?P<s>[ -])\d{4}(?P=s)\d{4}(?P=s)\d{4}(?P=s)\d{1,3}",  # 17-19 digits
        r"\d{4}(?P<s>[ -])\d{4}(?P=s)\d{4}(?P=s)\d{4}",  # 16
        r"\d{4}(?P<s>[ -])\d{4}(?P=s)\d{4}(?P=s)\d{1,3}",  # 13-15
        r"\d{4}(?P<s>[ -])\d{6}(?P=s)\d{4,5}",  # 14-15, the Amex and Diners grouping
    )
)
_IBAN = re.compile(
    r"(?=(?P<m>[A-Za-z]{2}\d{2}(?:[A-Za-z0-9]{11,30}|(?: [A-Za-z0-9]{4})+(?: [A-Za-z0-9]{1,3})?)))", _A
)
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9_%+\-]+(?:\.[A-Za-z0-9_%+\-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}(?![A-Za-z0-9_\-])",
    _A,
)
_PHONE_INTL = re.compile(r"(?=(?P<m>\+[1-9](?:[ \-]?\d|[ \-]?\(\d{1,4}\))*))", _A)
_PHONE_UK = re.compile(r"(?=(?P<m>(?:\(0\d{2,4}\)|0\d*)(?:[ \-]\d+)*))", _A)
_PHONE_US = re.compile(r"(?=(?P<m>\(\d{3}\) ?\d{3}-\d{4}|\d{3}-\d{3}-\d{4}))", _A)
_NI = re.compile(r"(?=(?P<m>[A-Za-z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-Da-d]))", _A)
_SSN = re.compile(r"(?=(?P<m>\d{3}-\d{2}-\d{4}))", _A)
_GROUP_BREAK = re.compile(r"[ \-]\(?\d+\)?$")


class PIIError(BotdrillError):
    """A scrub was asked for something it cannot do: an unknown kind, or a span outside its text."""

    code = "pii_invalid"


@dataclass(frozen=True)
class PIIMatch:
    """One piece of personal data in a text: `text == original[start:end]`."""

    kind: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Scrubbed:
    """A text with its personal data replaced, and its annotation spans moved to match."""

    text: str
    spans: tuple[tuple[int, int], ...]
    """The input spans, in the same order, as offsets into the new text."""
    replaced: dict[str, int]
    """How many values of each kind were replaced; kinds with none are left out (empty: nothing found)."""


def find_pii(text: str) -> list[PIIMatch]:
    """The personal data in `text`, sorted by start and never overlapping."""
    found = [
        *(("card_number", s, e) for s, e in _cards(text)),
        *(("iban", s, e) for s, e in _ibans(text)),
        *(("email", m.start(), m.end()) for m in _EMAIL.finditer(text)),
        *(("national_id", s, e) for s, e in _national_ids(text)),
        *(("phone", s, e) for s, e in _phones(text)),
    ]
    return [PIIMatch(kind, s, e, text[s:e]) for kind, s, e in _resolve(found)]


def _resolve(found: Iterable[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """Keep the longest of overlapping candidates (then by kind priority, then the first), in text order."""
    kept: list[tuple[str, int, int]] = []
    for kind, s, e in sorted(set(found), key=lambda c: (c[1] - c[2], _PRIORITY[c[0]], c[1])):
        if all(e <= ks or ke <= s for _, ks, ke in kept):
            kept.append((kind, s, e))
    return sorted(kept, key=lambda c: c[1])


class Surrogates:
    """Made-up replacements for the personal data of one dialogue: deterministic, consistent, distinct.

    Every turn of a dialogue should share one object, so that a value mentioned twice keeps one surrogate
    (the user's card stays one card); a fresh object per dialogue keeps dialogues independent. Surrogates
    come out in the order values are first met, so the same dialogue under the same key always reads the
    same. Surrogates never equal the value they replace nor any other value or surrogate of their kind met
    so far in the dialogue. `key` is kept as given.
    """

    def __init__(self, key: str) -> None:
        self.key = key
        self._rng = random.Random(int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest(), "big"))
        self._given: dict[tuple[str, str], str] = {}  # (kind, canonical original) -> surrogate, unformatted
        self._taken: dict[str, set[str]] = {kind: set() for kind in PII_KINDS}

    def surrogate(self, kind: str, original: str) -> str:
        """The surrogate for `original`, a value of `kind` as it was written (e.g. a `PIIMatch.text`).

        The result keeps the original's separators, grouping, letter case and length (an e-mail address
        becomes `user<N>@example.com`, `.org` or `.net`, after the original's top-level domain).

        Raises:
            PIIError: `kind` is not one of `PII_KINDS`, or `original` is not a value that `find_pii`
                would report (whole) as `kind`.
        """
        if kind not in _PRIORITY:
            raise PIIError(f"unknown kind of personal data {kind!r}; known: {', '.join(PII_KINDS)}")
        if [(m.kind, m.start, m.end) for m in find_pii(original)] != [(kind, 0, len(original))]:
            # the message leaves the value out: it may be personal data
            raise PIIError(f"the value given ({len(original)} characters) is not a recognisable {kind}")
        if kind == "phone":
            return self._phone(original)
        if kind == "email":  # its dots and @ tell addresses apart (a@bc.com is not ab@c.com): case only
            tld = original.rsplit(".", 1)[-1].casefold()
            domain = {"org": "example.org", "net": "example.net"}.get(tld, "example.com")
            return self._get(
                kind,
                original.casefold(),
                [lambda: f"user{self._rng.randrange(1, 1_000_000)}@{domain}"],
                norm=str.casefold,
            )
        canon = _alnum(original).casefold()
        make = {"card_number": self._card, "iban": self._iban, "national_id": self._national_id}[kind]
        return _pour(original, self._get(kind, canon, [lambda: make(canon)]))

    def _get(
        self,
        kind: str,
        canon: str,
        makers: Sequence[Callable[[], str]],
        norm: Callable[[str], str] = lambda new: _alnum(new).casefold(),
    ) -> str:
        """The surrogate already given to `canon`, or a new one from the first maker that finds a free one."""
        if (kind, canon) in self._given:
            return self._given[(kind, canon)]
        taken = self._taken[kind]
        taken.add(canon)  # neither this value nor any other real one met so far may be a surrogate
        for i, make in enumerate(makers):
            for _ in range(_RESERVED_TRIES if i < len(makers) - 1 else 10_000):
                candidate = make()
                if norm(candidate) not in taken:
                    taken.add(norm(candidate))
                    self._given[(kind, canon)] = candidate
                    return candidate
        raise PIIError(f"no free surrogate left for a {kind}")  # pragma: no cover

    def _digits(self, n: int) -> str:
        return "".join(self._rng.choice(string.digits) for _ in range(n))

    def _card(self, digits: str) -> str:
        """Same length and first two digits (the network), new account digits, a valid Luhn check digit."""
        head = digits[:2] + self._digits(len(digits) - 3)
        return head + _luhn_digit(head)

    def _iban(self, compact: str) -> str:
        """Same country and length, letters where the original has letters, valid mod-97 check digits."""
        country = compact[:2].upper()
        bban = "".join(
            self._rng.choice(string.ascii_uppercase) if c.isalpha() else self._rng.choice(string.digits)
            for c in compact[4:]
        )
        return f"{country}{98 - _mod97(bban + country + '00'):02d}{bban}"

    def _national_id(self, compact: str) -> str:
        """A UK National Insurance number with a prefix HMRC issues, or a US SSN in issued ranges."""
        if compact[:1].isalpha():
            prefix = self._rng.choice(_NI_PREFIXES)
            return prefix + self._digits(6) + self._rng.choice("ABCD")
        area = self._rng.choice([a for a in range(1, 900) if a != 666])
        return f"{area:03d}{self._rng.randrange(1, 100):02d}{self._rng.randrange(1, 10_000):04d}"

    def _phone(self, original: str) -> str:
        """Same country code, trunk prefix and shape; a number from a fictional range where one exists.

        UK numbers come from Ofcom's drama ranges (07700 900xxx for mobiles, 020 7946 0xxx for London, and
        so on) and North American ones from 555-0100-0199; other countries get random digits after the
        first digit of the national number (which says mobile or fixed). A range used up falls back to
        random digits.
        """
        cc, trunk, nsn, international = _parse_phone(original)

        def reserved() -> str:
            if cc == "1" and len(nsn) == 10:
                return f"{self._rng.randrange(2, 10)}{self._digits(2)}55501{self._digits(2)}"
            block = next((b for lead, b in _UK_DRAMA if nsn.startswith(lead)), None)
            if cc == "44" and len(nsn) == 10 and block is not None:
                return block + self._digits(3)
            return random_digits()

        def random_digits() -> str:
            if cc == "1" and len(nsn) == 10:  # keep a North American area code's first digit 2-9
                return f"{self._rng.randrange(2, 10)}{self._digits(9)}"
            return nsn[:1] + self._digits(len(nsn) - 1)

        new = self._get("phone", f"{cc}:{nsn}", [reserved, random_digits], norm=lambda n: f"{cc}:{n}")
        return _pour(original, (cc if international else "") + trunk + new)


def _build_ni_prefixes() -> tuple[str, ...]:
    first = [c for c in string.ascii_uppercase if c not in _NI_BAD_LETTERS]
    second = [c for c in first if c != "O"]
    return tuple(a + b for a in first for b in second if a + b not in _NI_BAD_PREFIXES)


_NI_PREFIXES = _build_ni_prefixes()


def scrub(text: str, surrogates: Surrogates, spans: Sequence[tuple[int, int]] = ()) -> Scrubbed:
    """`text` with every match of `find_pii` replaced by its surrogate, and `spans` moved to the new text.

    A span clear of every match keeps its characters exactly (it only shifts by the length differences of
    the replacements before it). A span containing a match grows or shrinks with it. A span that overlaps
    a match only partly is *extended* to cover the whole surrogate, never clamped: half a surrogate would be
    a value nobody said, while the whole one is what the slot now holds (so the slot's text is no longer
    just the original's part; callers that compare slot values should re-read them from the new text).

    Raises:
        PIIError: a span is not `0 <= start <= end <= len(text)`.
    """
    for s, e in spans:
        if not 0 <= s <= e <= len(text):
            raise PIIError(f"span ({s}, {e}) is not within a text of {len(text)} characters")
    matches = find_pii(text)
    pieces: list[str] = []
    # (old start, old end, new start, new end) of each replacement
    moves: list[tuple[int, int, int, int]] = []
    replaced: dict[str, int] = {}
    at = shift = 0
    for m in matches:
        new = surrogates.surrogate(m.kind, m.text)
        pieces += [text[at : m.start], new]
        moves.append((m.start, m.end, m.start + shift, m.start + shift + len(new)))
        shift += len(new) - (m.end - m.start)
        replaced[m.kind] = replaced.get(m.kind, 0) + 1
        at = m.end
    pieces.append(text[at:])

    def move(pos: int, is_start: bool) -> int:
        delta = 0
        for old_s, old_e, new_s, new_e in moves:
            if pos >= old_e:
                delta = new_e - old_e
            elif pos > old_s:  # strictly inside a replaced value: out to the edge of its surrogate
                return new_s if is_start else new_e
            else:
                break
        return pos + delta

    return Scrubbed(
        text="".join(pieces),
        spans=tuple((move(s, True), move(e, False)) for s, e in spans),
        replaced={k: replaced[k] for k in PII_KINDS if k in replaced},
    )


def scrub_many(
    texts_with_spans: Iterable[tuple[str, Sequence[tuple[int, int]]]], key: str
) -> tuple[list[Scrubbed], dict[str, int]]:
    """Scrub the turns of one dialogue with one `Surrogates(key)`, so a value keeps its surrogate across
    turns; also returns the counts over all turns (kinds with none left out).

    Raises:
        PIIError: a span is outside its text.
    """
    surrogates = Surrogates(key)
    results = [scrub(text, surrogates, spans) for text, spans in texts_with_spans]
    totals: dict[str, int] = {}
    for r in results:
        for kind, n in r.replaced.items():
            totals[kind] = totals.get(kind, 0) + n
    return results, {k: totals[k] for k in PII_KINDS if k in totals}


# --- recognisers -------------------------------------------------------------------------------------


def _clear_before(text: str, i: int) -> bool:
    """Nothing at `i - 1` makes the candidate part of a longer token (a word, a `+` code, `12.`, `3-`)."""
    if i == 0:
        return True
    prev = text[i - 1]
    if prev.isalnum() or prev in "_+":
        return False
    return not (prev in "-./:," and i >= 2 and text[i - 2].isdigit())


def _clear_after(text: str, j: int) -> bool:
    """Nothing at `j` continues the candidate (a word character, or `.5`, `-12`, `/26`, `,000`, `:30`)."""
    if j == len(text):
        return True
    nxt = text[j]
    if nxt.isalnum() or nxt == "_":
        return False
    return not (nxt in "-./:," and j + 1 < len(text) and text[j + 1].isdigit())


def _spans(pattern: re.Pattern[str], text: str) -> Iterator[tuple[int, int]]:
    for m in pattern.finditer(text):
        s, e = m.span("m")
        if _clear_before(text, s):
            yield s, e


def _cards(text: str) -> Iterator[tuple[int, int]]:
    for pattern in _CARD_PATTERNS:
        for s, e in _spans(pattern, text):
            digits = _alnum(text[s:e])
            if 13 <= len(digits) <= 19 and _clear_after(text, e) and _luhn_ok(digits):
                yield s, e


def _ibans(text: str) -> Iterator[tuple[int, int]]:
    for s, e in _spans(_IBAN, text):
        token = text[s:e]
        # where the token may end: after any character when compact, at a group's end when spaced
        ends = [
            i + 1 for i, c in enumerate(token) if c != " " and (i + 1 == len(token) or token[i + 1] == " ")
        ]
        if " " not in token:
            ends = list(range(1, len(token) + 1))
        country = token[:2].upper()
        for end in sorted(ends, reverse=True):
            compact = _alnum(token[:end]).upper()
            want = _IBAN_LENGTHS.get(country)
            if (len(compact) == want or (want is None and 15 <= len(compact) <= 34)) and (
                _clear_after(text, s + end) and _mod97(compact[4:] + compact[:4]) == 1
            ):
                yield s, s + end
                break


def _national_ids(text: str) -> Iterator[tuple[int, int]]:
    for s, e in _spans(_NI, text):
        token = text[s:e]
        compact = _alnum(token)
        prefix = compact[:2].upper()
        if (
            _clear_after(text, e)
            and token.count(" ") in (0, 2, 4)
            and (token.count(" ") != 2 or (token[2] == " " and token[-2] == " "))
            and (compact.isupper() or compact.islower())
            and not (_NI_BAD_LETTERS & set(prefix))
            and prefix[1] != "O"
            and prefix not in _NI_BAD_PREFIXES
        ):
            yield s, e
    for s, e in _spans(_SSN, text):
        area, group, serial = text[s:e].split("-")
        if (
            _clear_after(text, e)
            and area not in ("000", "666")
            and not area.startswith("9")
            and group != "00"
            and serial != "0000"
        ):
            yield s, e


def _phones(text: str) -> Iterator[tuple[int, int]]:
    for pattern, lo, hi in ((_PHONE_INTL, 8, 15), (_PHONE_UK, 10, 11)):
        for s, e in _spans(pattern, text):
            token = text[s:e]
            # too many digits: perhaps a number follows; drop trailing groups until it fits
            while sum(c.isdigit() for c in token) > hi and _GROUP_BREAK.search(token):
                token = _GROUP_BREAK.sub("", token)
            n = sum(c.isdigit() for c in token)
            if lo <= n <= hi and _clear_after(text, s + len(token)):
                if pattern is _PHONE_UK and (len(token) < 2 or token.lstrip("(")[1] == "0"):
                    continue  # 00 starts an international call, not a UK number
                yield s, s + len(token)
    for s, e in _spans(_PHONE_US, text):
        if _clear_after(text, e) and text[s:e].lstrip("(")[0] not in "01":
            yield s, e


# --- checks and helpers ------------------------------------------------------------------------------


def _alnum(text: str) -> str:
    return "".join(c for c in text if c.isalnum())


def _luhn_sum(digits: str) -> int:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10


def _luhn_ok(digits: str) -> bool:
    return _luhn_sum(digits) == 0


def _luhn_digit(head: str) -> str:
    """The check digit that makes `head` followed by it pass Luhn."""
    return str((10 - _luhn_sum(head + "0")) % 10)


def _mod97(alnum: str) -> int:
    """ISO 7064 mod 97-10 over letters as 10-35 (the IBAN check, with the first four moved to the end)."""
    return int("".join(str(int(c, 36)) for c in alnum.upper())) % 97


def _parse_phone(original: str) -> tuple[str, str, str, bool]:
    """(country code, trunk prefix as written, national significant number, written internationally)."""
    digits = "".join(c for c in original if c.isdigit())
    if original.lstrip().startswith("+"):
        size = 1 if digits[0] in "17" else 2 if digits[:2] in _TWO_DIGIT_CODES else 3
        cc, rest = digits[:size], digits[size:]
        if "(0)" in original and rest.startswith("0"):
            return cc, "0", rest[1:], True
        return cc, "", rest, True
    if digits.startswith("0"):
        return "44", "0", digits[1:], False
    return "1", "", digits, False


def _pour(shape: str, chars: str) -> str:
    """`chars` written into the letter and digit positions of `shape`, keeping its separators and case."""
    it = iter(chars)
    out = []
    for c in shape:
        if c.isalnum():
            new = next(it)
            out.append(new.lower() if c.islower() else new.upper() if c.isupper() else new)
        else:
            out.append(c)
    return "".join(out)
