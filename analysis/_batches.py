"""Generated batches in the store: saved whole, listed, compared, and rolled back without deleting.

A batch is the unit a data team reasons about: "the 50-per-intent run with the lexical method, from
Tuesday". Every batch keeps what produced it (config hash, seed, methods, prompt variants, selection
criteria, parent batch) and what its gates did (counts in and out of each), so two batches can be
diffed and a bad one rolled back. Rolling back only flips the batch's status: its examples stay
queryable, and the `active_examples` view, which every export and dataset build reads, leaves them out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from botdrill.scenarios import BotdrillError
from botdrill.simulator._store import _TURN_SCHEMA

from ._generate import Batch, Example
from ._metrics import Database, _open


class BatchError(BotdrillError):
    """A batch cannot be found, saved or rolled back as asked; the message says which and why."""

    code = "batch"


_EXAMPLE_SCHEMA = pa.schema(
    [
        ("batch_id", pa.string()),
        ("example_id", pa.string()),
        ("idx", pa.int32()),
        ("kind", pa.string()),
        ("intent", pa.string()),
        ("near_intent", pa.string()),
        ("text", pa.string()),
        ("gold_slots", _TURN_SCHEMA.field("gold_slots").type),
        ("gold_acts", pa.list_(pa.string())),
        ("edits", pa.string()),
        ("turns", pa.string()),
        ("method", pa.string()),
        ("origin", pa.string()),
        ("alignment", pa.float64()),
        ("predicted_intent", pa.string()),
        ("slot_coverage", pa.float64()),
        ("coherence", pa.float64()),
        ("coherence_issues", pa.list_(pa.string())),
        ("naturalness", pa.float64()),
        ("kept", pa.bool_()),
        ("rejected_by", pa.string()),
        ("pii_replaced", pa.int32()),
    ]
)


@contextmanager
def writing(db: Database) -> Iterator[Any]:
    """A connection that may write: the caller's own, or a `Store` opened (and migrated) for the call."""
    from botdrill.simulator._store import Store

    if hasattr(db, "execute"):
        yield db
        return
    store = Store(db)
    try:
        yield store.con
    finally:
        store.close()


@contextmanager
def transaction(con: Any) -> Iterator[None]:
    """All of it lands, or none."""
    con.execute("BEGIN")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _num(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def _example_row(batch_id: str, idx: int, e: Example) -> dict[str, Any]:
    c = e.candidate
    return {
        "batch_id": batch_id,
        "example_id": e.example_id,
        "idx": idx,
        "kind": c.kind,
        "intent": c.intent,
        "near_intent": c.meta.get("near"),
        "text": c.text,
        "gold_slots": [s.model_dump() for s in c.slots],
        "gold_acts": list(c.acts),
        "edits": json.dumps(
            [
                {
                    "perturbation": d.perturbation,
                    "kind": d.kind,
                    "start": d.start,
                    "end": d.end,
                    "before": d.before,
                    "after": d.after,
                }
                for d in c.edits
            ]
        ),
        "turns": json.dumps(
            [
                {
                    "speaker": t.speaker,
                    "text": t.text,
                    "intent": t.intent,
                    "acts": list(t.acts),
                    "slots": [s.model_dump() for s in t.slots],
                }
                for t in c.turns
            ]
        )
        if c.turns
        else None,
        "method": c.method,
        "origin": c.origin,
        "alignment": _num(e.alignment),
        "predicted_intent": e.predicted,
        "slot_coverage": _num(e.slot_coverage),
        "coherence": _num(e.coherence),
        "coherence_issues": list(e.coherence_issues),
        "naturalness": _num(e.naturalness),
        "kept": e.kept,
        "rejected_by": e.rejected_by,
        "pii_replaced": e.pii_replaced,
    }


def save_batch(db: Database, batch: Batch) -> None:
    """Write a batch and all its examples in one transaction (all of it lands, or none).

    Raises:
        BatchError: a batch with this id exists, or the parent batch is unknown.
    """
    from botdrill.simulator._runner import _versions

    with writing(db) as con:
        if con.execute("select 1 from batches where batch_id = ?", [batch.batch_id]).fetchone():
            raise BatchError(f"batch {batch.batch_id!r} already exists; a batch is never overwritten")
        if (
            batch.parent
            and not con.execute("select 1 from batches where batch_id = ?", [batch.parent]).fetchone()
        ):
            raise BatchError(f"parent batch {batch.parent!r} is not in the database")
        rows = [_example_row(batch.batch_id, i, e) for i, e in enumerate(batch.examples)]
        table = pa.Table.from_pylist(rows, schema=_EXAMPLE_SCHEMA)
        rl = batch.realism
        config = batch.config.model_dump(mode="json")
        with transaction(con):
            con.execute(
                """insert into batches values (?, ?, 'active', NULL, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
                   ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [
                    batch.batch_id,
                    batch.created_at.replace(tzinfo=None),
                    batch.parent,
                    batch.spec_name,
                    batch.spec_sha256,
                    batch.seeds_sha256,
                    batch.config_hash,
                    batch.config.seed,
                    batch.generator,
                    list(batch.config.methods),
                    json.dumps(batch.prompt_variants),
                    json.dumps(config["thresholds"] | {"gates": config["gates"]}),
                    json.dumps(batch.gate_counts),
                    json.dumps(batch.diversity),
                    _num(rl.auc) if rl else None,
                    _num(rl.length_distance) if rl else None,
                    _num(rl.vocabulary_distance) if rl else None,
                    rl.n_real if rl else None,
                    json.dumps(batch.pii_replaced),
                    len(batch.examples),
                    sum(1 for e in batch.examples if e.kept),
                    batch.changelog or _changelog(batch),
                    json.dumps(config | {"inputs": batch.inputs}),
                    json.dumps(_versions()),
                ],
            )
            con.register("_new_examples", table)
            con.execute("insert into examples select * from _new_examples")
            con.unregister("_new_examples")


def _changelog(batch: Batch) -> str:
    kept = sum(1 for e in batch.examples if e.kept)
    targets = batch.inputs.get("targets", [])
    return (
        f"{kept} of {len(batch.examples)} candidates kept for {len(targets)} intents "
        f"({', '.join(batch.config.methods)}; gates {'on' if batch.config.gates else 'off'}; "
        f"seed {batch.config.seed})"
    )


@dataclass(frozen=True)
class BatchInfo:
    """One batch as `botdrill batches list` shows it."""

    batch_id: str
    created_at: datetime
    status: str
    parent: str | None
    spec: str
    seed: int
    methods: tuple[str, ...]
    candidates: int
    kept: int
    realism_auc: float | None
    changelog: str


def list_batches(db: Database) -> list[BatchInfo]:
    """Every batch, newest first, rolled back ones included (their status says so)."""
    with _open(db) as con:
        rows = con.execute(
            """select batch_id, created_at, status, parent_batch, spec, seed, methods, n_candidates, n_kept,
                      realism_auc, changelog
               from batches order by created_at desc, batch_id desc"""
        ).fetchall()
    return [BatchInfo(r[0], r[1], r[2], r[3], r[4], r[5], tuple(r[6]), r[7], r[8], r[9], r[10]) for r in rows]


def batch_details(db: Database, batch_id: str) -> dict[str, Any]:
    """Everything stored about one batch, with its kept examples counted per intent and kind.

    Raises:
        BatchError: no such batch.
    """
    with _open(db) as con:
        cursor = con.execute("select * from batches where batch_id = ?", [batch_id])
        names = [d[0] for d in cursor.description]
        row = cursor.fetchone()
        if row is None:
            raise BatchError(f"no batch {batch_id!r} (see: botdrill batches list)")
        info = dict(zip(names, row, strict=True))
        for key in (
            "prompt_variants",
            "selection",
            "gate_counts",
            "diversity",
            "pii_replaced",
            "config",
            "versions",
        ):
            info[key] = json.loads(info[key])
        per_intent = con.execute(
            """select intent, kind, count(*) filter (where kept), count(*) from examples where batch_id = ?
               group by all order by intent, kind""",
            [batch_id],
        ).fetchall()
        rejected = con.execute(
            """select rejected_by, count(*) from examples where batch_id = ? and not kept
               group by all order by 2 desc""",
            [batch_id],
        ).fetchall()
    info["per_intent"] = [{"intent": i, "kind": k, "kept": n, "candidates": m} for i, k, n, m in per_intent]
    info["rejected"] = dict(rejected)
    return info


@dataclass(frozen=True)
class BatchDiff:
    """What changed from batch A to batch B."""

    a: str
    b: str
    settings: dict[str, tuple[Any, Any]]
    """Config and selection entries that differ, A's value then B's."""
    gates: list[tuple[str, int | None, int | None]]
    """Per gate, examples out of it in A and in B."""
    intents: list[tuple[str, int, int]]
    """Per intent, kept examples in A and in B."""
    only_a: int
    """Kept texts of A that B does not have."""
    only_b: int
    shared: int
    realism_auc: tuple[float | None, float | None]


def _flat(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


def diff_batches(db: Database, a: str, b: str) -> BatchDiff:
    """Compare two batches: settings, gate counts, kept examples per intent, and kept texts in common.

    Raises:
        BatchError: either batch does not exist.
    """
    left, right = batch_details(db, a), batch_details(db, b)
    fa: dict[str, Any] = {}
    fb: dict[str, Any] = {}
    _flat("", left["config"], fa)
    _flat("", right["config"], fb)
    settings = {k: (fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)}
    ga = {g["gate"]: g["out"] for g in left["gate_counts"]}
    gb = {g["gate"]: g["out"] for g in right["gate_counts"]}
    gates = [(g, ga.get(g), gb.get(g)) for g in dict.fromkeys([*ga, *gb])]
    ia = {(r["intent"], r["kind"]): r["kept"] for r in left["per_intent"]}
    ib = {(r["intent"], r["kind"]): r["kept"] for r in right["per_intent"]}
    intents = [
        (f"{i} ({k})" if k != "utterance" else i, ia.get((i, k), 0), ib.get((i, k), 0))
        for i, k in sorted(set(ia) | set(ib))
    ]
    with _open(db) as con:
        texts = {
            bid: {
                t
                for (t,) in con.execute(
                    "select text from examples where batch_id = ? and kept", [bid]
                ).fetchall()
            }
            for bid in (a, b)
        }
    return BatchDiff(
        a=a,
        b=b,
        settings=settings,
        gates=gates,
        intents=intents,
        only_a=len(texts[a] - texts[b]),
        only_b=len(texts[b] - texts[a]),
        shared=len(texts[a] & texts[b]),
        realism_auc=(left["realism_auc"], right["realism_auc"]),
    )


def rollback_batch(db: Database, batch_id: str, *, reason: str = "") -> int:
    """Mark a batch rolled back: its examples leave every export and dataset build, and stay stored.

    Returns the number of kept examples taken out of use.

    Raises:
        BatchError: no such batch, or it is already rolled back.
    """
    with writing(db) as con:
        row = con.execute("select status from batches where batch_id = ?", [batch_id]).fetchone()
        if row is None:
            raise BatchError(f"no batch {batch_id!r} (see: botdrill batches list)")
        if row[0] == "rolled_back":
            raise BatchError(f"batch {batch_id!r} is already rolled back")
        con.execute(
            "update batches set status = 'rolled_back', rolled_back_at = ?, rollback_reason = ? "
            "where batch_id = ?",
            [datetime.now(UTC).replace(tzinfo=None), reason or None, batch_id],
        )
        kept = con.execute("select count(*) from examples where batch_id = ? and kept", [batch_id]).fetchone()
        return int(kept[0]) if kept else 0


def active_batches(db: Database, ids: Sequence[str] = ()) -> list[str]:
    """The ids of active batches (of `ids`, when given; a rolled-back or unknown id there is an error)."""
    with _open(db) as con:
        rows = dict(con.execute("select batch_id, status from batches").fetchall())
    for bid in ids:
        if bid not in rows:
            raise BatchError(f"no batch {bid!r} (see: botdrill batches list)")
        if rows[bid] != "active":
            raise BatchError(f"batch {bid!r} is rolled back; it is out of every export and dataset build")
    return list(ids) if ids else sorted(b for b, s in rows.items() if s == "active")
