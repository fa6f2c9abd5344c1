"""`botdrill pack check`: a pack's domain graph checked before anyone drills with it."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ._util import invoke, one_line

BANKING = (resources.files("botdrill.scenarios") / "packs" / "banking.yaml").read_text(encoding="utf-8")


def _mutated(tmp_path: Path, anchor: str, old: str, new: str) -> Path:
    """The banking pack with the first `old` after `anchor` replaced by `new`."""
    at = BANKING.index(anchor)
    cut = BANKING.index(old, at)
    path = tmp_path / "pack.yaml"
    path.write_text(BANKING[:cut] + new + BANKING[cut + len(old) :], encoding="utf-8")
    return path


def test_the_builtin_pack_is_clean() -> None:
    result = invoke("pack", "check", "banking")
    assert result.exit_code == 0, result.stderr
    out = one_line(result.stdout)
    assert "banking" in out and "15 intents (6 critical)" in out and "turns_into" in out
    assert "error" not in out and "warning" not in out


def test_a_critical_intent_that_may_escalate_is_an_error(tmp_path: Path) -> None:
    path = _mutated(tmp_path, "name: report_fraud", "expected: must", "expected: may")
    result = invoke("pack", "check", str(path))
    assert result.exit_code == 1
    out = one_line(result.stdout)
    assert "error: critical_not_must" in out and "report_fraud" in out


def test_an_invalid_pack_is_reported_with_its_location(tmp_path: Path) -> None:
    path = _mutated(tmp_path, "id: panicked_fraud_victim", "channel: mobile_chat", "channel: pigeon")
    result = invoke("pack", "check", str(path))
    assert result.exit_code == 2
    assert f"{path}:" in one_line(result.stderr) and "channel" in one_line(result.stderr)


def test_schema_prints_the_shipped_schema() -> None:
    result = invoke("schema")
    assert result.exit_code == 0, result.stderr
    shipped = (resources.files("botdrill.scenarios") / "packs" / "pack.schema.json").read_text(
        encoding="utf-8"
    )
    assert result.stdout == shipped
