"""The review loop against the store: sheets out of a batch, ratings and agreement into it, thresholds
calibrated from them.

The pure parts (sheet format, Krippendorff's alpha, threshold search) are in `_review`; this module only
decides which examples go on a sheet and where results are kept (tables `ratings`, `agreement`,
`calibrations`).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._batches import BatchError, transaction, writing
from ._metrics import Database, _open
from ._review import (
    RATING_DIMENSIONS,
    Agreement,
    Calibration,
    Rating,
    ReviewError,
    SheetRow,
    agreement,
    calibrate,
    read_ratings,
    write_rating_sheet,
)

GATE_SCORES = ("alignment", "naturalness", "coherence", "slot_coverage")


def _check_batch(con: Any, batch_id: str) -> None:
    if not con.execute("select 1 from batches where batch_id = ?", [batch_id]).fetchone():
        raise BatchError(f"no batch {batch_id!r} (see: botdrill batches list)")


def export_sheet(
    db: Database, batch_id: str, out: str | Path, *, n: int = 100, refused_share: float = 0.3, seed: int = 0
) -> int:
    """Write a rating sheet for `batch_id`: a seeded sample of `n` utterances and negatives, about
    `refused_share` of them refused by a rubric gate (the thresholds can only be calibrated with verdicts on
    both sides of them). Returns the rows written."""
    with _open(db) as con:
        _check_batch(con, batch_id)
        rows = con.execute(
            """select example_id, intent, text, kept, rejected_by from examples
               where batch_id = ? and kind <> 'dialogue'
                 and (kept or rejected_by in ('alignment', 'naturalness', 'coherence', 'slot_coverage'))
               order by idx""",
            [batch_id],
        ).fetchall()
    if not rows:
        raise ReviewError(f"batch {batch_id!r} has no utterances to rate")
    rng = random.Random(seed)
    kept = [r for r in rows if r[3]]
    refused = [r for r in rows if not r[3]]
    want_refused = min(len(refused), round(n * refused_share))
    chosen = rng.sample(refused, want_refused)
    chosen += rng.sample(kept, min(len(kept), n - len(chosen)))
    if len(chosen) < n:
        rest = [r for r in refused if r not in chosen]
        chosen += rng.sample(rest, min(len(rest), n - len(chosen)))
    rng.shuffle(chosen)  # raters must not see which were kept
    return write_rating_sheet(out, [SheetRow(r[0], batch_id, r[1], r[2]) for r in chosen])


def import_ratings(db: Database, batch_id: str, sheets: Sequence[str | Path]) -> tuple[int, list[Agreement]]:
    """Read filled sheets (one rater each, named by the file), store every rating of `batch_id`'s examples
    (replacing a rater's earlier rating of the same example and dimension), and store the agreement over all
    ratings of the batch. A sheet that fails to read stores nothing: all sheets are read before writing.

    Raises:
        ReviewError: a sheet cannot be read, or rates an example that is not in the batch.
    """
    ratings: list[Rating] = []
    for sheet in sheets:
        ratings += read_ratings(sheet)
    with writing(db) as con:
        _check_batch(con, batch_id)
        ids = {
            r
            for (r,) in con.execute(
                "select example_id from examples where batch_id = ?", [batch_id]
            ).fetchall()
        }
        for r in ratings:
            if r.example_id not in ids:
                raise ReviewError(f"{r.source}: example {r.example_id!r} is not in batch {batch_id!r}")
        now = datetime.now(UTC).replace(tzinfo=None)
        with transaction(con):
            for r in ratings:
                con.execute(
                    "insert or replace into ratings values (?, ?, ?, ?, ?, ?, ?)",
                    [batch_id, r.example_id, r.rater, r.dimension, r.value, r.source, now],
                )
            stored = con.execute(
                "select example_id, rater, dimension, value, source from ratings where batch_id = ?",
                [batch_id],
            ).fetchall()
            result = agreement([Rating(*row) for row in stored])
            for a in result:
                con.execute(
                    "insert or replace into agreement values (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        batch_id,
                        a.dimension,
                        a.level,
                        None if a.alpha != a.alpha else a.alpha,
                        a.units,
                        a.raters,
                        a.ratings,
                        now,
                    ],
                )
    return len(ratings), result


def calibrate_batch(
    db: Database, batch_id: str, *, gates: Sequence[str] | None = None, dimension: str = "usable"
) -> list[Calibration]:
    """Calibrate each gate's threshold to the raters' verdicts on `dimension`, store and return them.

    Raises:
        ReviewError: an unknown gate or dimension, or too few verdicts of either kind.
    """
    if dimension not in RATING_DIMENSIONS:
        raise ReviewError(f"unknown dimension {dimension!r}; one of {', '.join(RATING_DIMENSIONS)}")
    chosen = list(gates or GATE_SCORES)
    for gate in chosen:
        if gate not in GATE_SCORES:
            raise ReviewError(f"unknown gate {gate!r}; one of {', '.join(GATE_SCORES)}")
    with writing(db) as con:
        _check_batch(con, batch_id)
        stored = con.execute(
            "select example_id, rater, dimension, value, source from ratings where batch_id = ?", [batch_id]
        ).fetchall()
        if not stored:
            raise ReviewError(
                f"batch {batch_id!r} has no ratings yet: botdrill review import {batch_id} SHEET..."
            )
        ratings = [Rating(*row) for row in stored]
        row = con.execute("select selection from batches where batch_id = ?", [batch_id]).fetchone()
        selection = json.loads(row[0]) if row else {}
        out: list[Calibration] = []
        now = datetime.now(UTC).replace(tzinfo=None)
        for gate in chosen:
            scores = {
                e: float(s)
                for e, s in con.execute(
                    f"select example_id, {gate} from examples where batch_id = ? and {gate} is not null",
                    [batch_id],
                ).fetchall()
            }
            c = calibrate(scores, ratings, dimension=dimension, gate=gate, previous=selection.get(gate))
            con.execute(
                "insert into calibrations values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    batch_id,
                    c.gate,
                    c.dimension,
                    c.threshold,
                    c.previous_threshold,
                    c.balanced_accuracy,
                    c.n,
                    c.kept_good,
                    c.kept_bad,
                    c.dropped_good,
                    c.dropped_bad,
                    now,
                ],
            )
            out.append(c)
        return out
