"""Loading packs: the built-in banking pack, and errors that name file, line and field."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from botdrill.scenarios import (
    BotdrillError,
    Pack,
    ScenarioError,
    SlotType,
    builtin_packs,
    load_pack,
    pack_digest,
    parse_pack,
)

CRITICAL = [
    "report_fraud",
    "lost_or_stolen_card",
    "account_takeover",
    "unrecognised_transaction",
    "bereavement",
    "customer_in_crisis",
]


# -- helpers ----------------------------------------------------------------------------------------


def mutate(text: str, anchor: str, old: str, new: str) -> tuple[str, int]:
    """Replace `old` by `new` on the first line at or after the line holding `anchor`.

    Returns the new text and the 1-based number of the changed line.
    """
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if anchor in line)
    for i in range(start, len(lines)):
        if old in lines[i]:
            lines[i] = lines[i].replace(old, new, 1)
            return "".join(lines), i + 1
    raise AssertionError(f"{old!r} not found after {anchor!r}")


def write(tmp_path: Path, text: str, name: str = "pack.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(path: Path) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_pack(path)
    return info.value


def assert_located(exc: ScenarioError, path: Path, line: int) -> None:
    assert exc.path == str(path)
    assert exc.line == line
    assert f"{path}:{line}" in str(exc)


# -- the built-in pack ------------------------------------------------------------------------------


def test_builtin_packs_lists_banking() -> None:
    assert "banking" in builtin_packs()
    assert builtin_packs() == sorted(builtin_packs())


def test_banking_loads_as_a_pack(pack: Pack) -> None:
    assert isinstance(pack, Pack)
    assert pack.name == "banking"
    assert str(pack.reference_date) == "2026-03-16"
    assert pack.currency_symbol == "£"


def test_banking_has_enough_intents(pack: Pack) -> None:
    assert len(pack.intents) >= 12
    common = [i for i in pack.intents if not i.critical]
    assert len(common) >= 6


@pytest.mark.parametrize("name", CRITICAL)
def test_banking_critical_intents_must_escalate(pack: Pack, name: str) -> None:
    intent = pack.intent(name)
    assert intent.critical is True
    assert intent.escalation.expected == "must"
    assert intent.escalation.within_turns is not None and intent.escalation.within_turns >= 1


def test_banking_common_intents_never_escalate_by_default(pack: Pack) -> None:
    # Only the critical intents are a "must"; a common one handed off unasked is an over-escalation.
    musts = {i.name for i in pack.intents if i.escalation.expected == "must"}
    assert musts == {i.name for i in pack.intents if i.critical}
    assert set(CRITICAL) <= musts


def test_banking_has_enough_personas(pack: Pack) -> None:
    assert len(pack.personas) >= 8
    assert len({p.id for p in pack.personas}) == len(pack.personas)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("card_last4", SlotType.CARD_LAST4),
        ("amount", SlotType.AMOUNT),
        ("merchant", SlotType.CHOICE),
        ("date", SlotType.DATE),
    ],
)
def test_banking_core_slots(pack: Pack, name: str, kind: SlotType) -> None:
    slot = pack.slot(name)
    assert slot.type is kind
    assert slot.cues and slot.answers


def test_banking_merchant_has_values(pack: Pack) -> None:
    assert "Tesco" in pack.slot("merchant").values


def test_every_intent_slot_is_declared(pack: Pack) -> None:
    declared = {s.name for s in pack.slots}
    for intent in pack.intents:
        assert set(intent.slots) <= declared, intent.name


def test_load_pack_from_file_equals_builtin(tmp_path: Path, banking_text: str, pack: Pack) -> None:
    path = write(tmp_path, banking_text)
    assert load_pack(path) == pack
    assert load_pack(str(path)) == pack


def test_pack_digest_is_sha256_of_text(tmp_path: Path, banking_text: str) -> None:
    expected = hashlib.sha256(banking_text.encode("utf-8")).hexdigest()
    assert pack_digest("banking") == expected
    assert pack_digest(write(tmp_path, banking_text)) == expected
    changed = banking_text.replace("patience: short", "patience: long", 1)
    assert pack_digest(write(tmp_path, changed, "other.yaml")) != expected


def test_unknown_slot_name_raises_keyerror(pack: Pack) -> None:
    with pytest.raises(KeyError):
        pack.slot("iban")
    with pytest.raises(KeyError):
        pack.intent("buy_crypto")


# -- errors with file, line and field ---------------------------------------------------------------


def test_scenario_error_is_a_botdrill_error() -> None:
    exc = ScenarioError("bad", path="p.yaml", line=3, field="a.b")
    assert isinstance(exc, BotdrillError)
    assert exc.code == "scenario_invalid"
    assert str(exc) == "p.yaml:3: a.b: bad"
    assert str(ScenarioError("bad")) == "<pack>: bad"


def test_typo_in_key(tmp_path: Path, banking_text: str) -> None:
    text, line = mutate(banking_text, "id: panicked_fraud_victim", "patience:", "patiance:")
    path = write(tmp_path, text)
    exc = load_error(path)
    assert_located(exc, path, line)
    assert exc.field == "personas.0.patiance"
    assert "personas.0.patiance" in str(exc)


def test_wrong_type(tmp_path: Path, banking_text: str) -> None:
    text, line = mutate(banking_text, "id: panicked_fraud_victim", "patience: short", "patience: lots")
    path = write(tmp_path, text)
    exc = load_error(path)
    assert_located(exc, path, line)
    assert exc.field == "personas.0.patience"
    assert "'short', 'moderate' or 'long'" in exc.reason


def test_out_of_range_value(tmp_path: Path, banking_text: str) -> None:
    text, line = mutate(banking_text, "name: report_fraud", "within_turns: 3", "within_turns: 0")
    path = write(tmp_path, text)
    exc = load_error(path)
    assert_located(exc, path, line)
    assert exc.field == "intents.0.escalation.within_turns"


def test_bad_enum_value(tmp_path: Path, banking_text: str) -> None:
    text, line = mutate(banking_text, "name: merchant", "type: choice", "type: chioce")
    path = write(tmp_path, text)
    exc = load_error(path)
    assert_located(exc, path, line)
    assert exc.field == "slots.2.type"


def test_must_escalation_without_within_turns(tmp_path: Path, banking_text: str) -> None:
    text, _ = mutate(banking_text, "name: report_fraud", "within_turns: 3", "# within_turns removed")
    path = write(tmp_path, text)
    exc = load_error(path)
    assert exc.field == "intents.0.escalation"
    assert "within_turns" in exc.reason
    # The escalation mapping starts on the line after `escalation:`.
    _, escalation_line = mutate(banking_text, "name: report_fraud", "expected: must", "expected: must")
    assert exc.line == escalation_line


@pytest.mark.parametrize("indent", ["      verbosity", "  verbosity"])
def test_invalid_yaml_bad_indentation(tmp_path: Path, banking_text: str, indent: str) -> None:
    text, line = mutate(banking_text, "id: panicked_fraud_victim", "    verbosity", indent)
    path = write(tmp_path, text)
    exc = load_error(path)
    assert_located(exc, path, line)
    assert exc.field is None
    assert "not valid YAML" in exc.reason


def test_duplicate_key(tmp_path: Path, banking_text: str) -> None:
    text, line = mutate(banking_text, "id: panicked_fraud_victim", "proficiency: native", "patience: long")
    path = write(tmp_path, text)
    exc = load_error(path)
    assert_located(exc, path, line)
    assert exc.field == "personas.0.patience"
    assert "duplicate key 'patience'" in exc.reason


def test_python_tags_are_refused(tmp_path: Path, banking_text: str) -> None:
    text, line = mutate(
        banking_text,
        "id: panicked_fraud_victim",
        "patience: short",
        "patience: !!python/name:os.system short",
    )
    path = write(tmp_path, text)
    exc = load_error(path)
    assert_located(exc, path, line)
    assert "unsupported YAML value" in exc.reason


def test_python_tags_never_run_code(tmp_path: Path, banking_text: str) -> None:
    marker = tmp_path / "pwned"
    text, _ = mutate(
        banking_text,
        "id: panicked_fraud_victim",
        "patience: short",
        f"patience: !!python/object/apply:os.system ['touch {marker}']",
    )
    with pytest.raises(ScenarioError):
        parse_pack(text)
    assert not marker.exists()


def test_unknown_slot_referenced_by_intent_is_located(tmp_path: Path, banking_text: str) -> None:
    text, line = mutate(
        banking_text,
        "name: report_fraud",
        "slots: [amount, merchant, date]",
        "slots: [amount, merchant, date, iban]",
    )
    path = write(tmp_path, text)
    exc = load_error(path)
    assert exc.path == str(path)
    assert "'iban'" in str(exc) and "report_fraud" in str(exc)
    assert exc.line == line
    assert exc.field is not None and exc.field.startswith("intents.0.slots")


def test_opening_with_foreign_placeholder_is_located(tmp_path: Path, banking_text: str) -> None:
    text, line = mutate(
        banking_text,
        "name: report_fraud",
        "I need to report fraud on my account.",
        "I need to report fraud on card {card_last4}.",
    )
    path = write(tmp_path, text)
    exc = load_error(path)
    assert exc.path == str(path)
    assert "{card_last4}" in str(exc) and "not one of this intent's slots" in str(exc)
    assert exc.line == line
    assert exc.field is not None and exc.field.startswith("intents.0.openings")


def test_placeholder_in_restatement_is_refused(banking_text: str) -> None:
    text, _ = mutate(
        banking_text,
        "name: report_fraud",
        "No, I want to report fraud.",
        "No, I want to report fraud of {amount}.",
    )
    with pytest.raises(ScenarioError, match="is not allowed here"):
        parse_pack(text)


def test_correction_without_value_is_located(tmp_path: Path, banking_text: str) -> None:
    text, line = mutate(banking_text, "corrections:", '"no, it was {value}"', '"no, it was wrong"')
    path = write(tmp_path, text)
    exc = load_error(path)
    assert exc.line == line
    assert exc.field is not None and exc.field.startswith("lexicon.corrections")
    assert "lexicon.corrections" in str(exc)


def test_duplicate_intent_name_is_located(tmp_path: Path, banking_text: str) -> None:
    text, line = mutate(
        banking_text, "name: lost_or_stolen_card", "name: lost_or_stolen_card", "name: report_fraud"
    )
    path = write(tmp_path, text)
    exc = load_error(path)
    assert "duplicate name 'report_fraud'" in exc.reason
    assert exc.line == line
    assert exc.field == "intents.1.name"
    assert exc.path == str(path)


def test_top_level_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- one\n- two\n")
    exc = load_error(path)
    assert_located(exc, path, 1)
    assert "mapping" in exc.reason


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    exc = load_error(path)
    assert exc.path == str(path)
    assert exc.line is None
    assert "no such pack file" in exc.reason
    assert "banking" in exc.reason  # lists the built-in packs
    assert str(path) in str(exc)


def test_unknown_builtin_name() -> None:
    with pytest.raises(ScenarioError, match="no such pack file") as info:
        load_pack("no_such_pack")
    assert info.value.path == "no_such_pack"


def test_non_utf8_file(tmp_path: Path, banking_text: str) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(banking_text.encode("utf-8") + "# café\n".encode("latin-1"))
    exc = load_error(path)
    assert exc.path == str(path)
    assert "UTF-8" in exc.reason
    assert str(path) in str(exc)


def test_parse_pack_default_source(banking_text: str) -> None:
    text, line = mutate(banking_text, "id: panicked_fraud_victim", "patience: short", "patience: 11")
    with pytest.raises(ScenarioError) as info:
        parse_pack(text)
    assert info.value.path == "<pack>"
    assert str(info.value).startswith(f"<pack>:{line}: personas.0.patience: ")


def test_several_problems_are_counted(banking_text: str) -> None:
    text, _ = mutate(banking_text, "id: panicked_fraud_victim", "patience: short", "patience: lots")
    text, _ = mutate(text, "id: panicked_fraud_victim", "channel: mobile_chat", "channel: pigeon")
    with pytest.raises(ScenarioError, match=r"\(and 1 more problem\)"):
        parse_pack(text)


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n"])
def test_empty_file(tmp_path: Path, content: str) -> None:
    path = write(tmp_path, content)
    exc = load_error(path)
    assert exc.path == str(path)
    assert "empty" in exc.reason
    assert str(path) in str(exc)
