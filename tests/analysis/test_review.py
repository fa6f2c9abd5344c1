"""Human review: rating sheets written and filled in like a rater would, every way a sheet can be wrong,
Krippendorff's alpha against the worked example of its definition, agreement, and gate calibration."""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Mapping
from pathlib import Path

import pytest

from botdrill.analysis._review import (
    DIMENSION_HELP,
    RATING_DIMENSIONS,
    Agreement,
    AlphaLevel,
    Rating,
    ReviewError,
    SheetRow,
    agreement,
    calibrate,
    krippendorff_alpha,
    read_ratings,
    read_sheet,
    write_rating_sheet,
)
from botdrill.scenarios import BotdrillError

HEADER = ["example_id", "batch_id", "intent", "text", "intent_fit", "naturalness", "usable", "comment"]

ROWS = [
    SheetRow("ex1", "b1", "report_fraud", "someone used my card in Leeds"),
    SheetRow("ex2", "b1", "report_fraud", "card stolen, pls block"),
    SheetRow("ex3", "b2", "close_account", 'I want to close my account, "now"\nthanks'),
]


def _fill(path: Path, values: Mapping[str, Mapping[str, str]], *, comment: str = "") -> None:
    """Fill a written sheet in as a rater would in a spreadsheet: by column name, row by row."""
    with path.open(encoding="utf-8", newline="") as handle:
        table = list(csv.reader(handle))
    header = table[0]
    for row in table[1:]:
        for column, value in values.get(row[0], {}).items():
            row[header.index(column)] = value
        row[header.index("comment")] = comment
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(table)


def _sheet(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _error(path: Path, *, rater: str | None = None, dimensions: tuple[str, ...] = RATING_DIMENSIONS) -> str:
    with pytest.raises(ReviewError) as info:
        read_ratings(path, rater=rater, dimensions=dimensions)
    return str(info.value)


# -- sheets ----------------------------------------------------------------------------------------------


def test_dimensions_are_described() -> None:
    assert RATING_DIMENSIONS == ("intent_fit", "naturalness", "usable")
    assert set(DIMENSION_HELP) == set(RATING_DIMENSIONS)
    assert all(DIMENSION_HELP[d] for d in RATING_DIMENSIONS)
    assert issubclass(ReviewError, BotdrillError)


def test_sheet_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "ana.csv"
    assert write_rating_sheet(path, ROWS) == 3
    with path.open(encoding="utf-8", newline="") as handle:
        table = list(csv.reader(handle))
    assert table[0] == HEADER
    assert [r[:4] for r in table[1:]] == [[r.example_id, r.batch_id, r.intent, r.text] for r in ROWS]
    assert all(cell == "" for r in table[1:] for cell in r[4:])
    assert read_sheet(path) == ROWS
    assert read_ratings(path) == []  # nothing rated yet

    _fill(
        path,
        {
            "ex1": {"intent_fit": "5", "naturalness": " 4 ", "usable": "Yes"},
            "ex2": {"intent_fit": "2", "usable": "n"},  # naturalness left blank: not rated
            "ex3": {"naturalness": "3.0", "usable": "TRUE"},
        },
        comment="=looks fine",
    )
    ratings = read_ratings(path)
    # ex3's text spans two lines, so its row starts on line 4 and the next would start on line 6.
    assert ratings == [
        Rating("ex1", "ana", "intent_fit", 5, f"{path}:2"),
        Rating("ex1", "ana", "naturalness", 4, f"{path}:2"),
        Rating("ex1", "ana", "usable", 1, f"{path}:2"),
        Rating("ex2", "ana", "intent_fit", 2, f"{path}:3"),
        Rating("ex2", "ana", "usable", 0, f"{path}:3"),
        Rating("ex3", "ana", "naturalness", 3, f"{path}:4"),
        Rating("ex3", "ana", "usable", 1, f"{path}:4"),
    ]
    assert {r.rater for r in read_ratings(path, rater="Ana B.")} == {"Ana B."}
    only = read_ratings(path, dimensions=("usable",))
    assert [(r.example_id, r.value) for r in only] == [("ex1", 1), ("ex2", 0), ("ex3", 1)]


@pytest.mark.parametrize("word", ["yes", "YES", "y", "Y", "1", "true", "True"])
def test_yes_words(tmp_path: Path, word: str) -> None:
    path = _sheet(tmp_path / "r.csv", ["example_id,usable", f"a,{word}"])
    assert [r.value for r in read_ratings(path, dimensions=("usable",))] == [1]


@pytest.mark.parametrize("word", ["no", "No", "n", "N", "0", "false", "FALSE"])
def test_no_words(tmp_path: Path, word: str) -> None:
    path = _sheet(tmp_path / "r.csv", ["example_id,usable", f"a,{word}"])
    assert [r.value for r in read_ratings(path, dimensions=("usable",))] == [0]


def test_formulas_are_written_as_text_and_read_back_exactly(tmp_path: Path) -> None:
    texts = [
        '=HYPERLINK("http://evil.example","click")',
        "+44 7700 900123 is my number",
        "-5 pounds taken twice",
        "@SUM(A1:A9)",
        "\t=1+1",
        "\r=1+1",
        "'tis my card",
        "'=already quoted",
        "plain = not at the start",
    ]
    rows = [SheetRow(f"-id{i}" if i % 2 else f"id{i}", "=b", "@intent", t) for i, t in enumerate(texts)]
    path = tmp_path / "ben.csv"
    write_rating_sheet(path, rows)
    with path.open(encoding="utf-8", newline="") as handle:
        table = list(csv.reader(handle))[1:]
    for written, row in zip(table, rows, strict=True):
        assert written[1] == "'=b"
        assert written[2] == "'@intent"
        assert written[0] == ("'" + row.example_id if row.example_id.startswith("-") else row.example_id)
        if row.text[0] in "=+-@\t\r'":
            assert written[3] == "'" + row.text
        else:
            assert written[3] == row.text
    assert read_sheet(path) == rows
    _fill(
        path, {f"'{r.example_id}" if r.example_id[0] == "-" else r.example_id: {"usable": "y"} for r in rows}
    )
    assert [r.example_id for r in read_ratings(path)] == [r.example_id for r in rows]


def test_a_quote_typed_by_a_rater_stays(tmp_path: Path) -> None:
    path = _sheet(tmp_path / "r.csv", ["example_id,batch_id,intent,text", "'x,b,i,'hello"])
    assert read_sheet(path) == [SheetRow("'x", "b", "i", "'hello")]


def test_writing_replaces_the_sheet_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "sheet.csv"
    path.write_text("old", encoding="utf-8")
    write_rating_sheet(path, ROWS[:1], dimensions=("usable",))
    assert (
        path.read_text(encoding="utf-8").splitlines()[0] == "example_id,batch_id,intent,text,usable,comment"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["sheet.csv"]


@pytest.mark.parametrize(
    ("rows", "dimensions", "message"),
    [
        (
            [SheetRow("a", "b", "i", "t"), SheetRow("a", "b", "i", "u")],
            RATING_DIMENSIONS,
            "'a' is in rows 1 and 2",
        ),
        ([SheetRow(" ", "b", "i", "t")], RATING_DIMENSIONS, "row 1 has an empty example id"),
        (ROWS, ("usable", "clarity"), "unknown rating dimension 'clarity'"),
        (ROWS, ("usable", "usable"), "'usable' given more than once"),
        (ROWS, (), "no rating dimension"),
    ],
)
def test_sheets_that_cannot_be_written(
    tmp_path: Path, rows: list[SheetRow], dimensions: tuple[str, ...], message: str
) -> None:
    path = tmp_path / "s.csv"
    with pytest.raises(ReviewError, match=message):
        write_rating_sheet(path, rows, dimensions=dimensions)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_folder(tmp_path: Path) -> None:
    with pytest.raises(ReviewError, match="cannot write"):
        write_rating_sheet(tmp_path / "missing" / "s.csv", ROWS)


# -- reading errors --------------------------------------------------------------------------------------


def test_off_scale_value_names_file_line_and_column(tmp_path: Path) -> None:
    lines = [",".join(HEADER)] + [f"ex{i},b,i,t,3,4,yes," for i in range(1, 6)] + ["ex6,b,i,t,3,9,yes,"]
    message = _error(_sheet(tmp_path / "ratings.csv", lines))
    assert message.endswith("ratings.csv line 7, column naturalness: '9' is not in 1..5")


@pytest.mark.parametrize(
    ("cell", "column", "reason"),
    [
        ("0", "intent_fit", "'0' is not in 1..5"),
        ("six", "intent_fit", "'six' is not a whole number in 1..5"),
        ("3.5", "naturalness", "'3.5' is not a whole number in 1..5"),
        ("maybe", "usable", "'maybe' is not yes or no"),
    ],
)
def test_unreadable_values(tmp_path: Path, cell: str, column: str, reason: str) -> None:
    values = {"intent_fit": "3", "naturalness": "3", "usable": "no", column: cell}
    row = ["a", "b", "i", "t", values["intent_fit"], values["naturalness"], values["usable"], ""]
    path = _sheet(tmp_path / "r.csv", [",".join(HEADER), ",".join(row)])
    assert _error(path).endswith(f"r.csv line 2, column {column}: {reason}")


def test_missing_columns_are_named(tmp_path: Path) -> None:
    path = _sheet(tmp_path / "r.csv", ["example_id,text,intent_fit", "a,t,3"])
    message = _error(path)
    assert "line 1: missing columns naturalness, usable" in message
    assert "the header has: example_id, text, intent_fit" in message
    assert "missing column example_id (the header has: id, usable)" in _error(
        _sheet(tmp_path / "s.csv", ["id,usable", "a,y"]), dimensions=("usable",)
    )


def test_duplicate_example_names_both_lines(tmp_path: Path) -> None:
    path = _sheet(tmp_path / "r.csv", ["example_id,usable", "a,y", "b,n", "a,n"])
    assert _error(path, dimensions=("usable",)).endswith(
        "r.csv line 4, column example_id: example 'a' is also on line 2"
    )


def test_other_malformed_sheets(tmp_path: Path) -> None:
    assert "line 3, column usable: a rating on a row without an example_id" in _error(
        _sheet(tmp_path / "a.csv", ["example_id,usable", "a,y", ",n"]), dimensions=("usable",)
    )
    assert "line 2: 4 cells, but the header names 2" in _error(
        _sheet(tmp_path / "b.csv", ["example_id,usable", "a,y,,x"]), dimensions=("usable",)
    )
    assert "column 'usable' appears twice" in _error(
        _sheet(tmp_path / "c.csv", ["example_id,usable,Usable", "a,y,n"]), dimensions=("usable",)
    )
    assert "d.csv line 1: no header row" in _error(_sheet(tmp_path / "d.csv", []))
    (tmp_path / "d.csv").write_bytes(b"")
    assert "d.csv line 1: no header row" in _error(tmp_path / "d.csv")
    assert "cannot read" in _error(tmp_path / "nowhere.csv")
    (tmp_path / "e.csv").write_bytes(b"example_id,usable\n\xff\xfe,y\n")
    assert "not UTF-8" in _error(tmp_path / "e.csv", dimensions=("usable",))
    assert "no name" in _error(_sheet(tmp_path / "f.csv", ["example_id,usable"]), rater=" ")
    assert "unknown rating dimension 'clarity'" in _error(tmp_path / "f.csv", dimensions=("clarity",))


def test_lenient_where_spreadsheets_differ(tmp_path: Path) -> None:
    # A byte-order mark, header case and spaces, trailing cells dropped, blank rows, trailing empty cells.
    path = tmp_path / "r.csv"
    path.write_bytes("\ufeffExample_ID , Usable\r\na,y\r\n\r\n,\r\nb\r\nc,n,,\r\n".encode())
    assert [(r.example_id, r.value) for r in read_ratings(path, dimensions=("usable",))] == [
        ("a", 1),
        ("c", 0),
    ]


# -- alpha -----------------------------------------------------------------------------------------------

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the example with missing values.
PAPER = {
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
}


def _units(by_rater: Mapping[str, list[int | None]]) -> dict[int, dict[str, float]]:
    units: dict[int, dict[str, float]] = {}
    for rater, values in by_rater.items():
        for unit, value in enumerate(values, 1):
            if value is not None:
                units.setdefault(unit, {})[rater] = value
    return units


@pytest.mark.parametrize(
    ("level", "published"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)]
)
def test_alpha_reproduces_the_published_example(level: AlphaLevel, published: float) -> None:
    assert round(krippendorff_alpha(_units(PAPER), level), 3) == published


def test_alpha_nominal_from_the_papers_coincidences() -> None:
    # 40 pairable values, marginals n_c = 9, 13, 10, 5, 3 for values 1..5, and 32 of the 40 coincidences
    # on the diagonal: alpha = 1 - (n - 1) * (n - 32) / (n^2 - sum n_c^2).
    expected = 1 - 39 * (40 - 32) / (40**2 - (9**2 + 13**2 + 10**2 + 5**2 + 3**2))
    assert krippendorff_alpha(_units(PAPER)) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_perfect_agreement_is_one(level: AlphaLevel) -> None:
    data = {u: {"a": v, "b": v, "c": v} for u, v in enumerate([1, 2, 3, 3, 5])}
    assert krippendorff_alpha(data, level) == 1.0


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_alpha_ignores_order_and_names(level: AlphaLevel) -> None:
    base = krippendorff_alpha(_units(PAPER), level)
    rng = random.Random(7)
    for _ in range(20):
        raters = list(PAPER)
        rng.shuffle(raters)
        renamed = {f"r{i}": PAPER[r] for i, r in enumerate(raters)}
        units = list(_units(renamed).items())
        rng.shuffle(units)
        shuffled = {f"u{rng.random()}": dict(rng.sample(list(v.items()), len(v))) for _, v in units}
        assert krippendorff_alpha(shuffled, level) == pytest.approx(base, abs=1e-12)


def test_unpairable_units_do_not_count() -> None:
    data = _units(PAPER)
    extra: dict[int, dict[str, float]] = {**data, 99: {"A": 5}, 100: {}}
    assert krippendorff_alpha(extra, "ordinal") == krippendorff_alpha(data, "ordinal")


def test_alpha_undefined_is_nan() -> None:
    assert math.isnan(krippendorff_alpha({}))
    assert math.isnan(krippendorff_alpha({1: {"a": 1}, 2: {"b": 2}}))  # no unit has two values
    assert math.isnan(krippendorff_alpha({1: {"a": 3, "b": 3}, 2: {"a": 3, "b": 3}}, "interval"))


def test_systematic_disagreement_is_negative() -> None:
    data = {u: {"a": 0, "b": 1} for u in range(4)}
    assert krippendorff_alpha(data) < 0


def test_alpha_rejects_what_it_cannot_measure() -> None:
    with pytest.raises(ReviewError, match="unknown level 'fuzzy'"):
        krippendorff_alpha({1: {"a": 1, "b": 1}}, "fuzzy")  # type: ignore[arg-type]
    with pytest.raises(ReviewError, match="negative"):
        krippendorff_alpha({1: {"a": -1, "b": 1}}, "ratio")
    with pytest.raises(ReviewError, match="not a finite number"):
        krippendorff_alpha({1: {"a": math.nan, "b": 1}})


# -- agreement -------------------------------------------------------------------------------------------


def _rating(example: str, rater: str, dimension: str, value: int) -> Rating:
    return Rating(example, rater, dimension, value, f"{rater}.csv:1")


def test_agreement_over_three_raters(tmp_path: Path) -> None:
    write_rating_sheet(
        tmp_path / "sheet.csv", [SheetRow(f"e{i}", "b", "i", f"text {i}") for i in range(1, 6)]
    )
    filled = {
        "ana": {
            "e1": (5, 5, "y"),
            "e2": (4, 3, "y"),
            "e3": (1, 2, "n"),
            "e4": (2, 4, "n"),
            "e5": (5, 4, "y"),
        },
        "ben": {
            "e1": (5, 4, "y"),
            "e2": (4, 4, "y"),
            "e3": (2, 2, "n"),
            "e4": (2, 5, "y"),
            "e5": (4, 4, "y"),
        },
        "cy": {"e1": (4, 5, "y"), "e2": (3, 4, "n"), "e3": (1, 1, "n"), "e4": (1, 4, "n")},  # skipped e5
    }
    ratings: list[Rating] = []
    for rater, values in filled.items():
        path = tmp_path / f"{rater}.csv"
        path.write_bytes((tmp_path / "sheet.csv").read_bytes())
        _fill(
            path,
            {
                e: {"intent_fit": str(f), "naturalness": str(n), "usable": u}
                for e, (f, n, u) in values.items()
            },
        )
        ratings += read_ratings(path)
    result = agreement(ratings)
    assert [a.dimension for a in result] == list(RATING_DIMENSIONS)
    assert [a.level for a in result] == ["ordinal", "ordinal", "nominal"]
    for a in result:
        assert (a.units, a.raters, a.ratings) == (5, 3, 14)
        data: dict[str, dict[str, float]] = {}
        for r in ratings:
            if r.dimension == a.dimension:
                data.setdefault(r.example_id, {})[r.rater] = r.value
        assert a.alpha == krippendorff_alpha(data, a.level)
    fit, natural, usable = (a.alpha for a in result)
    assert fit > 0.75  # the raters mostly agree on intent fit
    assert natural < fit
    # usable by hand: 14 pairable values, 8 yes and 6 no; disagreement only in e2 (2 yes, 1 no) and e4
    # (1 yes, 2 no), each giving 2 * 1 / 2 = 1 yes-no and 1 no-yes coincidence: 4 off the diagonal, against
    # 2 * 8 * 6 = 96 expected pairs; alpha = 1 - (n - 1) * 4 / 96.
    assert usable == pytest.approx(1 - 13 * 4 / 96)


def test_agreement_counts_repeated_ratings_once_and_refuses_conflicts() -> None:
    ratings = [
        _rating("e1", "ana", "usable", 1),
        _rating("e1", "ana", "usable", 1),
        _rating("e1", "ben", "usable", 1),
        _rating("e2", "ana", "usable", 0),
        _rating("e2", "ben", "usable", 0),
        _rating("e1", "ana", "intent_fit", 3),
    ]
    (usable,) = agreement(ratings, dimensions=("usable",))
    assert usable == Agreement("usable", "nominal", 1.0, 2, 2, 4)
    with pytest.raises(ReviewError, match=r"rater 'ana' gave example 'e1' 1 \(ana.csv:1\) and 0"):
        agreement([*ratings, _rating("e1", "ana", "usable", 0)])


def test_agreement_with_nothing_to_pair() -> None:
    (fit,) = agreement([_rating("e1", "ana", "intent_fit", 4)], dimensions=("intent_fit",))
    assert math.isnan(fit.alpha)
    assert (fit.units, fit.raters, fit.ratings) == (0, 1, 1)


# -- calibration -----------------------------------------------------------------------------------------


def _verdicts(values: Mapping[str, int], dimension: str = "usable") -> list[Rating]:
    return [_rating(e, "ana", dimension, v) for e, v in values.items()]


def test_calibration_separates_separable_data() -> None:
    scores = {"g1": 0.7, "g2": 0.8, "g3": 0.95, "b1": 0.1, "b2": 0.3, "b3": 0.45, "unrated": 0.5}
    ratings = _verdicts({"g1": 1, "g2": 1, "g3": 1, "b1": 0, "b2": 0, "b3": 0, "unscored": 1})
    result = calibrate(scores, ratings, gate="alignment", previous=0.5)
    assert result.threshold == 0.7
    assert result.balanced_accuracy == 1.0
    assert (result.n, result.kept_good, result.kept_bad, result.dropped_good, result.dropped_bad) == (
        6,
        3,
        0,
        0,
        3,
    )
    assert (result.gate, result.dimension, result.previous_threshold) == ("alignment", "usable", 0.5)


def test_calibration_ties_go_to_the_lowest_threshold() -> None:
    # Threshold 0.9 keeps g1 only (1/2 good kept, 2/2 bad dropped); 0.6 keeps g1, b1 and g2 (2/2, 1/2):
    # both 0.75 balanced accuracy, and 0.6 keeps more.
    scores = {"g1": 0.9, "b1": 0.7, "g2": 0.6, "b2": 0.1}
    result = calibrate(scores, _verdicts({"g1": 1, "b1": 0, "g2": 1, "b2": 0}), gate="naturalness")
    assert result.threshold == 0.6
    assert result.balanced_accuracy == 0.75
    assert (result.kept_good, result.kept_bad, result.dropped_good, result.dropped_bad) == (2, 1, 0, 1)
    assert result.previous_threshold is None


def test_calibration_weighs_classes_equally() -> None:
    # 8 good, 2 bad: plain accuracy would keep everything; balanced accuracy drops the two bad ones.
    scores = {f"g{i}": 0.5 + i / 100 for i in range(8)} | {"b1": 0.2, "b2": 0.3}
    ratings = _verdicts({**{f"g{i}": 1 for i in range(8)}, "b1": 0, "b2": 0})
    assert calibrate(scores, ratings, gate="coherence").threshold == 0.5


def test_calibration_on_an_ordinal_dimension_uses_the_raters_mean() -> None:
    ratings = [
        _rating("e1", "ana", "naturalness", 4),
        _rating("e1", "ben", "naturalness", 3),  # mean 3.5: good
        _rating("e2", "ana", "naturalness", 5),
        _rating("e3", "ana", "naturalness", 3),
        _rating("e3", "ben", "naturalness", 4),
        _rating("e3", "cy", "naturalness", 2),  # mean 3: bad
        _rating("e4", "ana", "naturalness", 1),
    ]
    scores = {"e1": 0.6, "e2": 0.9, "e3": 0.5, "e4": math.nan, "e5": 0.2}
    with pytest.raises(ReviewError, match="got 2 good and 1 bad among 3 examples"):
        calibrate(scores, ratings, dimension="naturalness", gate="naturalness")
    scores["e4"] = 0.1
    result = calibrate(scores, ratings, dimension="naturalness", gate="naturalness")
    assert (result.threshold, result.balanced_accuracy, result.n) == (0.6, 1.0, 4)


def test_calibration_needs_two_verdicts_of_each_kind() -> None:
    scores = {"a": 0.9, "b": 0.8, "c": 0.1}
    with pytest.raises(ReviewError) as info:
        calibrate(scores, _verdicts({"a": 1, "b": 1, "c": 0}), gate="alignment")
    assert str(info.value) == (
        "calibrating gate 'alignment' on usable needs at least 2 good and 2 bad verdicts; "
        "got 2 good and 1 bad among 3 examples with both a score and a rating"
    )
    with pytest.raises(ReviewError, match="got 0 good and 0 bad"):
        calibrate({}, [], gate="alignment")
    with pytest.raises(ReviewError, match="unknown rating dimension 'clarity'"):
        calibrate(scores, [], dimension="clarity", gate="alignment")
