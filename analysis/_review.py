"""Human review of generated training examples: rating sheets out, ratings in, agreement, and gate
thresholds calibrated to what the raters said.

Gate scores (`alignment`, `naturalness`, ...) decide which synthetic utterances become training data, but a
score is only worth its threshold, and a threshold is only worth what people think of the examples it
keeps. The loop:

1. `write_rating_sheet` writes a sample of examples to a CSV that opens in any spreadsheet, with one empty
   column per rating dimension and one for a comment;
2. each rater fills in a copy; `read_ratings` reads it back (the rater is named by the file unless given),
   and stops at the first cell it cannot read, naming file, line and column, so a typo is fixed by the
   person who made it rather than silently dropped;
3. `agreement` reports Krippendorff's alpha per dimension: if raters do not agree with each other, their
   verdicts cannot calibrate anything;
4. `calibrate` picks the gate threshold that best separates the examples the raters found good from the
   others.

Dimensions (`RATING_DIMENSIONS`): `intent_fit` and `naturalness` are ordinal, 1 to 5; `usable` is yes/no,
stored as 1/0.

Spreadsheets run a cell that starts with `=`, `+`, `-` or `@` (or a tab or carriage return, which some
strip first) as a formula, and generated text can start that way by accident or on purpose. Such a cell is
written with a leading `'`, which spreadsheets show as plain text; a cell that itself starts with `'` gets
one too, so that removing the added quote on reading gives back exactly the text written, and a quote a
rater types is left alone. The sheet is written beside its destination under a temporary name, read back
and compared with the rows meant, and only then renamed into place.

Example:
    >>> rows = [SheetRow("ex1", "b1", "report_fraud", "my card was stolen")]
    >>> write_rating_sheet("ana.csv", rows)  # doctest: +SKIP
    1
    >>> ratings = read_ratings("ana.csv")  # after Ana filled it in  # doctest: +SKIP
    >>> [a.alpha for a in agreement(ratings + read_ratings("ben.csv"))]  # doctest: +SKIP
    [0.81, 0.66, 0.74]
"""

from __future__ import annotations

import csv
import math
import numbers
import os
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal, TextIO, TypeVar, get_args

from botdrill.scenarios import BotdrillError

from ._export import replace_file

RATING_DIMENSIONS: tuple[str, ...] = ("intent_fit", "naturalness", "usable")
"""The rating columns of a sheet, in order."""

DIMENSION_HELP: Mapping[str, str] = {
    "intent_fit": "1-5: does the text ask for the gold intent, and only that? 5 = clearly and only it",
    "naturalness": "1-5: would a real user write this? 5 = indistinguishable from a real message",
    "usable": "yes/no: would you keep this example in the training data as it is?",
}
"""What each dimension asks the rater, with its scale."""

AlphaLevel = Literal["nominal", "ordinal", "interval", "ratio"]
ALPHA_LEVELS: tuple[AlphaLevel, ...] = get_args(AlphaLevel)
"""The levels of measurement `krippendorff_alpha` knows."""

SHEET_COLUMNS: tuple[str, ...] = ("example_id", "batch_id", "intent", "text")
"""The columns of a sheet before the rating columns; `comment` comes after them."""

# Scale of each known dimension: (lowest, highest) for ordinal ratings, None for yes/no.
_SCALES: dict[str, tuple[int, int] | None] = {"intent_fit": (1, 5), "naturalness": (1, 5), "usable": None}
_YES = frozenset({"yes", "y", "1", "true"})
_NO = frozenset({"no", "n", "0", "false"})
_WHOLE = re.compile(r"^[+-]?\d+(?:\.0*)?$")
# Leading characters that make a spreadsheet read a cell as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

_U = TypeVar("_U")
_R = TypeVar("_R")


class ReviewError(BotdrillError):
    """A rating sheet cannot be written or read, or ratings cannot support what was asked of them."""

    code = "review_invalid"


@dataclass(frozen=True)
class SheetRow:
    """One example as it goes out to raters."""

    example_id: str
    batch_id: str
    intent: str
    text: str


@dataclass(frozen=True)
class Rating:
    """One rater's value for one example on one dimension."""

    example_id: str
    rater: str
    dimension: str
    value: int
    """1-5 for ordinal dimensions; 1 (yes) or 0 (no) for `usable`."""
    source: str
    """`file:line` the value was read from, so a surprising rating can be traced back to its cell."""


@dataclass(frozen=True)
class Agreement:
    """How far raters agree on one dimension."""

    dimension: str
    level: AlphaLevel
    alpha: float
    """Krippendorff's alpha; nan when it is undefined (no example rated twice, or no variation at all)."""
    units: int
    """Examples rated by at least two raters: the only ones alpha can use."""
    raters: int
    ratings: int


@dataclass(frozen=True)
class Calibration:
    """The gate threshold that best reproduces the raters' verdicts, and how it splits the rated examples."""

    gate: str
    dimension: str
    threshold: float
    """Keep an example when its gate score is at least this."""
    balanced_accuracy: float
    """Mean of the share of good examples kept and the share of bad ones dropped."""
    n: int
    """Examples with both a score and a verdict."""
    kept_good: int
    kept_bad: int
    dropped_good: int
    dropped_bad: int
    previous_threshold: float | None
    """The threshold in use before, when given, so a change can be reviewed."""


# -- the sheet -------------------------------------------------------------------------------------------


def write_rating_sheet(
    path: str | os.PathLike[str],
    rows: Sequence[SheetRow],
    *,
    dimensions: Sequence[str] = RATING_DIMENSIONS,
) -> int:
    """Write a sheet for raters; returns the number of rows written.

    The sheet is read back before it replaces anything at `path`, so a sheet that exists is one that
    `read_ratings` can read and that holds exactly `rows`.

    Raises:
        ReviewError: an unknown or repeated dimension, an empty or repeated example id, or the file cannot
            be written.
    """
    target = Path(path)
    dims = _dimensions(dimensions)
    seen: dict[str, int] = {}
    for i, row in enumerate(rows, 1):
        if not row.example_id.strip():
            raise ReviewError(
                f"{target}: row {i} has an empty example id; raters' values could not be matched"
            )
        if row.example_id in seen:
            raise ReviewError(
                f"{target}: example id {row.example_id!r} is in rows {seen[row.example_id]} and {i}"
            )
        seen[row.example_id] = i

    def write(handle: TextIO) -> None:
        writer = csv.writer(handle)
        writer.writerow([*SHEET_COLUMNS, *dims, "comment"])
        for row in rows:
            cells = (row.example_id, row.batch_id, row.intent, row.text)
            writer.writerow([*(_protect(c) for c in cells), *("" for _ in dims), ""])

    def check(tmp: Path) -> None:
        back = read_sheet(tmp)
        for i, (meant, got) in enumerate(zip(rows, back, strict=False), 1):
            if meant != got:
                raise ReviewError(f"{target}: row {i} (example {meant.example_id!r}) does not survive as CSV")
        if len(back) != len(rows):
            raise ReviewError(f"{target}: {len(rows)} rows written but {len(back)} read back")

    replace_file(target, write, error=ReviewError, check=check)
    return len(rows)


def read_sheet(path: str | os.PathLike[str]) -> list[SheetRow]:
    """The examples of a sheet, texts as they were written (the protective quotes removed).

    For checking that a returned sheet still holds the texts that were sent out: a rater who edits a text
    has rated something else.

    Raises:
        ReviewError: the file cannot be read, lacks a column of `SHEET_COLUMNS`, or repeats an example id.
    """
    return [
        SheetRow(*(_unprotect(row[c] or "") for c in SHEET_COLUMNS))
        for _, row in _rows(Path(path), SHEET_COLUMNS)
        if row["example_id"] is not None
    ]


def read_ratings(
    path: str | os.PathLike[str],
    *,
    rater: str | None = None,
    dimensions: Sequence[str] = RATING_DIMENSIONS,
) -> list[Rating]:
    """The ratings in a filled sheet, row by row; a blank cell is no rating.

    The rater is `rater`, or else the file's name without its extension (`ana.csv` is Ana's). Only
    `example_id` and the columns of `dimensions` are needed; others (text, comment) are not read.
    Ordinal cells take a whole number on the dimension's scale; yes/no cells take yes/no, y/n, 1/0 or
    true/false in any case.

    Raises:
        ReviewError: the first problem found, naming file, line and column: a missing column, a value off
            its scale, a repeated example id (with both lines), a rating without an example id.
    """
    target = Path(path)
    dims = _dimensions(dimensions)
    who = target.stem if rater is None else rater
    if not who.strip():
        raise ReviewError(f"{target}: the rater has no name; pass rater=")
    out: list[Rating] = []
    for line, row in _rows(target, ("example_id", *dims)):
        raw_id = row["example_id"]
        if raw_id is None:
            for dim in dims:
                if (row[dim] or "").strip():
                    raise ReviewError(
                        f"{target} line {line}, column {dim}: a rating on a row without an example_id"
                    )
            continue
        example_id = _unprotect(raw_id)
        for dim in dims:
            cell = (row[dim] or "").strip()
            if not cell:
                continue
            try:
                value = _parse(dim, cell)
            except ValueError as exc:
                raise ReviewError(f"{target} line {line}, column {dim}: {exc}") from None
            out.append(Rating(example_id, who, dim, value, f"{target}:{line}"))
    return out


def _rows(path: Path, required: Sequence[str]) -> Iterator[tuple[int, dict[str, str | None]]]:
    """(line, cells by column) for each non-blank row; an `example_id` of None means a blank id cell."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, strict=True)
            line = 1
            try:
                header = next(reader, None)
                if header is None or not any(c.strip() for c in header):
                    raise ReviewError(
                        f"{path} line 1: no header row; a sheet starts with one naming its columns"
                    )
                columns = [c.strip().lower() for c in header]
                index: dict[str, int] = {}
                for i, col in enumerate(columns):
                    if col and col in index:
                        raise ReviewError(f"{path} line 1: column {col!r} appears twice in the header")
                    index[col] = i
                missing = [c for c in required if c not in index]
                if missing:
                    raise ReviewError(
                        f"{path} line 1: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
                        f" (the header has: {', '.join(c for c in columns if c) or 'nothing'})"
                    )
                first_seen: dict[str, int] = {}
                line = reader.line_num + 1
                for cells in reader:
                    if any(c.strip() for c in cells[len(columns) :]):
                        raise ReviewError(
                            f"{path} line {line}: {len(cells)} cells, but the header names {len(columns)}"
                        )
                    if any(c.strip() for c in cells):
                        row = {c: cells[i] if i < len(cells) else "" for c, i in index.items()}
                        example_id: str | None = row["example_id"]
                        if not (example_id or "").strip():
                            example_id = None
                        else:
                            assert example_id is not None
                            key = _unprotect(example_id)
                            if key in first_seen:
                                raise ReviewError(
                                    f"{path} line {line}, column example_id: example {key!r} is also on line "
                                    f"{first_seen[key]}"
                                )
                            first_seen[key] = line
                        yield line, {**row, "example_id": example_id}
                    line = reader.line_num + 1
            except csv.Error as exc:
                raise ReviewError(f"{path} line {line}: not valid CSV: {exc}") from None
            except UnicodeDecodeError:
                raise ReviewError(f"{path}: not UTF-8 text; save the sheet as CSV UTF-8") from None
    except OSError as exc:
        raise ReviewError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _dimensions(dimensions: Sequence[str]) -> tuple[str, ...]:
    dims = tuple(dimensions)
    unknown = [d for d in dims if d not in _SCALES]
    if unknown:
        raise ReviewError(
            f"unknown rating dimension {', '.join(map(repr, unknown))}; known: {', '.join(_SCALES)}"
        )
    repeated = sorted({d for d in dims if dims.count(d) > 1})
    if repeated:
        raise ReviewError(f"rating dimension {', '.join(map(repr, repeated))} given more than once")
    if not dims:
        raise ReviewError("no rating dimension given")
    return dims


def _parse(dimension: str, cell: str) -> int:
    scale = _SCALES[dimension]
    if scale is None:
        word = cell.lower()
        if word in _YES:
            return 1
        if word in _NO:
            return 0
        raise ValueError(f"{cell!r} is not yes or no")
    low, high = scale
    if not _WHOLE.match(cell):
        raise ValueError(f"{cell!r} is not a whole number in {low}..{high}")
    value = int(float(cell))
    if not low <= value <= high:
        raise ValueError(f"{cell!r} is not in {low}..{high}")
    return value


def _protect(cell: str) -> str:
    return "'" + cell if cell.startswith((*_FORMULA_START, "'")) else cell


def _unprotect(cell: str) -> str:
    """Undo `_protect`: the quote goes only where `_protect` would have put it, so a rater's own stays."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith((*_FORMULA_START, "'")) else cell


# -- agreement -------------------------------------------------------------------------------------------


def krippendorff_alpha(data: Mapping[_U, Mapping[_R, float]], level: AlphaLevel = "nominal") -> float:
    """Krippendorff's alpha for `data[unit][rater] = value` (a missing rating is simply absent).

    Computed from the coincidence matrix as in Krippendorff, "Computing Krippendorff's Alpha-Reliability"
    (2011), so that units rated by different numbers of raters count as the paper says: a unit with fewer
    than two values cannot be paired and is left out, and each pair in a unit of m values weighs 1/(m-1).
    The ordinal distance is built from the marginal frequencies of the values, not their numeric gaps;
    the ratio distance needs values of zero or more.

    Returns nan when alpha is undefined: no unit has two values, or every pairable value is the same, so
    that no disagreement was possible and agreement says nothing (1.0 would overstate it, 0.0 understate
    it).

    Raises:
        ReviewError: an unknown level, a value that is not a finite number, or a negative value at ratio
            level.
    """
    if level not in ALPHA_LEVELS:
        raise ReviewError(f"unknown level {level!r}; one of: {', '.join(ALPHA_LEVELS)}")
    # Fractions keep the coincidences exact, so the result does not depend on the order of units.
    coincidence: dict[tuple[float, float], Fraction] = defaultdict(Fraction)
    for unit, by_rater in data.items():
        values = list(by_rater.values())
        for value in values:
            if not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise ReviewError(f"unit {unit!r}: {value!r} is not a finite number")
            if level == "ratio" and value < 0:
                raise ReviewError(f"unit {unit!r}: {value!r} is negative, which a ratio scale cannot have")
        m = len(values)
        if m < 2:
            continue
        counts = Counter(values)
        for c, n_c in counts.items():
            for k, n_k in counts.items():
                pairs = n_c * (n_k - (c == k))
                if pairs:
                    coincidence[c, k] += Fraction(pairs, m - 1)
    if not coincidence:
        return math.nan
    marginal: dict[float, Fraction] = defaultdict(Fraction)
    for (c, _), o in coincidence.items():
        marginal[c] += o
    n = sum(marginal.values(), Fraction(0))
    delta = _distance(level, marginal)
    observed = math.fsum(float(o) * delta(c, k) for (c, k), o in coincidence.items())
    expected = math.fsum(
        float(marginal[c] * marginal[k]) * delta(c, k) for c in marginal for k in marginal if c != k
    )
    if expected == 0:
        return math.nan
    return 1.0 - float(n - 1) * observed / expected


def _distance(level: AlphaLevel, marginal: Mapping[float, Fraction]) -> Callable[[float, float], float]:
    """The squared difference function δ²(c, k) of `level`."""
    if level == "nominal":
        return lambda c, k: 0.0 if c == k else 1.0
    if level == "interval":
        return lambda c, k: (c - k) ** 2
    if level == "ratio":
        return lambda c, k: 0.0 if c == k else ((c - k) / (c + k)) ** 2
    # Ordinal: (sum of n_g for g from c to k, minus half of n_c and of n_k) squared.
    ordered = sorted(marginal)
    cumulative = [Fraction(0)]
    for value in ordered:
        cumulative.append(cumulative[-1] + marginal[value])
    rank = {value: i for i, value in enumerate(ordered)}

    def ordinal(c: float, k: float) -> float:
        lo, hi = sorted((rank[c], rank[k]))
        between = cumulative[hi + 1] - cumulative[lo] - (marginal[c] + marginal[k]) / 2
        return float(between * between)

    return ordinal


def agreement(ratings: Sequence[Rating], dimensions: Sequence[str] = RATING_DIMENSIONS) -> list[Agreement]:
    """Krippendorff's alpha per dimension, in the order of `dimensions`: ordinal for the 1-5 dimensions,
    nominal for yes/no.

    Ratings of other dimensions are ignored. The same rater rating the same example twice (two files, one
    person) counts once if the values match.

    Raises:
        ReviewError: the same rater gave the same example two different values on a dimension.
    """
    dims = _dimensions(dimensions)
    by_dim = _by_dimension(ratings, dims)
    out: list[Agreement] = []
    for dim in dims:
        data = by_dim[dim]
        level: AlphaLevel = "nominal" if _SCALES[dim] is None else "ordinal"
        out.append(
            Agreement(
                dimension=dim,
                level=level,
                alpha=krippendorff_alpha(data, level),
                units=sum(1 for by_rater in data.values() if len(by_rater) >= 2),
                raters=len({r for by_rater in data.values() for r in by_rater}),
                ratings=sum(len(by_rater) for by_rater in data.values()),
            )
        )
    return out


def _by_dimension(ratings: Sequence[Rating], dims: Sequence[str]) -> dict[str, dict[str, dict[str, int]]]:
    """dimension -> example -> rater -> value, with each (example, rater) once."""
    out: dict[str, dict[str, dict[str, int]]] = {d: {} for d in dims}
    where: dict[tuple[str, str, str], Rating] = {}
    for r in ratings:
        if r.dimension not in out:
            continue
        first = where.setdefault((r.dimension, r.example_id, r.rater), r)
        if first.value != r.value:
            raise ReviewError(
                f"rater {r.rater!r} gave example {r.example_id!r} {first.value} ({first.source}) and "
                f"{r.value} ({r.source}) on {r.dimension}"
            )
        out[r.dimension].setdefault(r.example_id, {})[r.rater] = r.value
    return out


# -- calibration -----------------------------------------------------------------------------------------


def calibrate(
    scores: Mapping[str, float],
    ratings: Sequence[Rating],
    *,
    dimension: str = "usable",
    gate: str,
    previous: float | None = None,
) -> Calibration:
    """The threshold on `scores` (one gate's score per example id) that best matches the raters.

    The raters' verdict on an example is the majority: good when the mean of their values on `dimension`
    is at least 0.5 for yes/no (a tie counts as good) or 3.5 for 1-5. Examples without a verdict or without
    a score (nan counts as none) are left out. Each distinct score is a candidate threshold, keeping the
    examples that score at least that; the one with the highest balanced accuracy (equivalently, Youden's
    J) wins, so a rare class of verdicts weighs as much as a common one. Among equals the lowest wins:
    it keeps the most data for the same agreement.

    Raises:
        ReviewError: an unknown dimension, or fewer than two good or two bad verdicts, which cannot
            locate a threshold.
    """
    (dim,) = _dimensions((dimension,))
    scale = _SCALES[dim]
    cut = 0.5 if scale is None else 3.5
    rated = _by_dimension(ratings, (dim,))[dim]
    verdicts: list[tuple[float, bool]] = []
    for example_id, by_rater in rated.items():
        score = scores.get(example_id)
        if score is None or math.isnan(score):
            continue
        verdicts.append((float(score), sum(by_rater.values()) / len(by_rater) >= cut))
    good = sum(1 for _, g in verdicts if g)
    bad = len(verdicts) - good
    if good < 2 or bad < 2:
        raise ReviewError(
            f"calibrating gate {gate!r} on {dim} needs at least 2 good and 2 bad verdicts; got {good} good "
            f"and {bad} bad among {len(verdicts)} examples with both a score and a rating"
        )
    # Sweep thresholds from the highest score down: each step keeps the examples at that score too.
    tally: dict[float, list[int]] = defaultdict(lambda: [0, 0])
    for score, is_good in verdicts:
        tally[score][0 if is_good else 1] += 1
    kept_good = kept_bad = 0
    best: tuple[int, float, int, int] | None = None
    for threshold in sorted(tally, reverse=True):
        kept_good += tally[threshold][0]
        kept_bad += tally[threshold][1]
        # Balanced accuracy times 2*good*bad: an integer, so ties are exact.
        merit = kept_good * bad + (bad - kept_bad) * good
        if best is None or merit >= best[0]:
            best = (merit, threshold, kept_good, kept_bad)
    assert best is not None
    merit, threshold, kg, kb = best
    return Calibration(
        gate=gate,
        dimension=dim,
        threshold=threshold,
        balanced_accuracy=merit / (2 * good * bad),
        n=len(verdicts),
        kept_good=kg,
        kept_bad=kb,
        dropped_good=good - kg,
        dropped_bad=bad - kb,
        previous_threshold=previous,
    )
