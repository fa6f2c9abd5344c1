"""Record and replay of LLM calls in DuckDB, so a drill with LLM users, assistants or judges reruns exactly.

One table, `llm_calls`, keyed by `request_key(request)`: the SHA-256 of the request in canonical JSON
(sorted keys, no spaces, UTF-8), where the request holds the model, the sampling parameters, the messages,
the tools and the structured-output schema, and never the endpoint, the API key or any header. The same
request sent to another endpoint serving the same model (a recording made against a provider, replayed
against a local server in CI) finds the same row.

The table lives in any DuckDB file, botdrill's own included: open the store on a path, or on a connection
(it takes a cursor of its own, so its transactions stay apart from the caller's). New rows are buffered
and written in batches through Arrow, in one transaction each; `flush()` or `close()` writes the rest.
A process killed between flushes loses those recordings only, and the next `record` run makes them again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

__all__ = ["LLMCallRecord", "LLMStore", "canonical_json", "create_table", "request_key"]

_TABLE = """
CREATE TABLE IF NOT EXISTS llm_calls (
    key VARCHAR PRIMARY KEY,
    model VARCHAR NOT NULL,
    endpoint VARCHAR NOT NULL,
    request JSON NOT NULL,
    response JSON NOT NULL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    latency_ms DOUBLE,
    cost_usd DOUBLE,
    created_at TIMESTAMP NOT NULL,
    run_id VARCHAR
);
"""

_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("model", pa.string()),
        ("endpoint", pa.string()),
        ("request", pa.string()),
        ("response", pa.string()),
        ("prompt_tokens", pa.int32()),
        ("completion_tokens", pa.int32()),
        ("latency_ms", pa.float64()),
        ("cost_usd", pa.float64()),
        ("created_at", pa.timestamp("us")),
        ("run_id", pa.string()),
    ]
)


def create_table(con: duckdb.DuckDBPyConnection) -> None:
    """Create the `llm_calls` table if it is not there (botdrill's store does, so every file has it)."""
    con.execute(_TABLE)


def canonical_json(value: object) -> str:
    """`value` as canonical JSON: sorted keys, no whitespace, non-ASCII kept as is.

    Raises:
        TypeError: something in `value` is not JSON (a request must be plain data to have a key).
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def request_key(request: Mapping[str, Any]) -> str:
    """The record/replay key of a request: hex SHA-256 of its canonical JSON in UTF-8."""
    return hashlib.sha256(canonical_json(request).encode()).hexdigest()


@dataclass(frozen=True)
class LLMCallRecord:
    """One stored call: what was asked, what came back, what it cost."""

    key: str
    model: str
    endpoint: str
    """Host and port only (`api.openai.com`, `127.0.0.1:8000`): never a path, query, key or header."""
    request: Mapping[str, Any]
    """The request the key was computed from."""
    response: Mapping[str, Any]
    """The normalised reply: `text`, `tool_calls`, `finish_reason`, `model`."""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    cost_usd: float | None = None
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC).replace(tzinfo=None))
    """UTC, without a time zone (as botdrill's other tables)."""
    run_id: str | None = None


class LLMStore:
    """The `llm_calls` table of a DuckDB file.

    Args:
        database: a path, `":memory:"`, or an open connection (shared with botdrill's store, say).
        run_id: written on every row recorded through this store.
        flush_every: rows buffered before they are written.

    `recorded(key)` answers from the rows recorded through this store object only (one run); `get(key)`
    from those and the whole table.
    """

    def __init__(
        self,
        database: str | Path | duckdb.DuckDBPyConnection = ":memory:",
        *,
        run_id: str | None = None,
        flush_every: int = 512,
    ) -> None:
        if isinstance(database, duckdb.DuckDBPyConnection):
            self._con = database.cursor()
        else:
            self._con = duckdb.connect(str(database))
        self._con.execute(_TABLE)
        self.run_id = run_id
        self.flush_every = max(1, flush_every)
        self._session: dict[str, LLMCallRecord] = {}
        self._table: dict[str, Any] | None = None
        """The table as it was at the first `get` that looked beyond this run (rows by key)."""
        self._pending: dict[str, LLMCallRecord] = {}
        self._closed = False

    def recorded(self, key: str) -> LLMCallRecord | None:
        """The call with this key recorded through this store (this run), if any."""
        return self._session.get(key)

    def get(self, key: str) -> LLMCallRecord | None:
        """The call with this key, recorded in this run or any earlier one (read once, at the first call
        that looks beyond this run: rows another process writes later are not seen)."""
        found = self._session.get(key)
        if found is not None:
            return found
        if self._table is None:
            # One query for the whole table instead of one per call: a replay asks for every row anyway,
            # and a query per key on the event loop cost most of a replayed call's time.
            self._table = {
                row[0]: row
                for row in self._con.execute(
                    "SELECT key, model, endpoint, request, response, prompt_tokens, completion_tokens, "
                    "latency_ms, cost_usd, created_at, run_id FROM llm_calls"
                ).fetchall()
            }
        row = self._table.get(key)
        if row is None:
            return None
        return LLMCallRecord(
            key=row[0],
            model=row[1],
            endpoint=row[2],
            request=json.loads(row[3]),
            response=json.loads(row[4]),
            prompt_tokens=row[5],
            completion_tokens=row[6],
            latency_ms=row[7],
            cost_usd=row[8],
            created_at=row[9],
            run_id=row[10],
        )

    def put(self, record: LLMCallRecord) -> None:
        """Record a call (replacing an earlier recording of the same key once flushed)."""
        if self._closed:
            raise RuntimeError("the LLM call store is closed")
        if self.run_id is not None and record.run_id is None:
            record = LLMCallRecord(**{**record.__dict__, "run_id": self.run_id})
        self._session[record.key] = record
        self._pending[record.key] = record
        if len(self._pending) >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows in one transaction."""
        if not self._pending:
            return
        rows = list(self._pending.values())
        table = pa.Table.from_pydict(
            {
                "key": [r.key for r in rows],
                "model": [r.model for r in rows],
                "endpoint": [r.endpoint for r in rows],
                "request": [canonical_json(r.request) for r in rows],
                "response": [canonical_json(r.response) for r in rows],
                "prompt_tokens": [r.prompt_tokens for r in rows],
                "completion_tokens": [r.completion_tokens for r in rows],
                "latency_ms": [r.latency_ms for r in rows],
                "cost_usd": [r.cost_usd for r in rows],
                "created_at": [r.created_at for r in rows],
                "run_id": [r.run_id for r in rows],
            },
            schema=_SCHEMA,
        )
        view = "_bd_llm_calls"
        self._con.execute("BEGIN")
        try:
            self._con.register(view, table)
            self._con.execute(f"INSERT OR REPLACE INTO llm_calls BY NAME SELECT * FROM {view}")
            self._con.execute("COMMIT")
        except BaseException:
            self._con.execute("ROLLBACK")
            raise
        finally:
            self._con.unregister(view)
        self._pending.clear()

    def count(self) -> int:
        """Rows in the table, buffered ones included."""
        self.flush()
        row = self._con.execute("SELECT count(*) FROM llm_calls").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        """Flush and close this store's connection (a connection passed in stays open)."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            self._con.close()

    def __enter__(self) -> LLMStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
