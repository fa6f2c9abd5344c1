"""Escalation triggers in whole runs: crisis cues read from what the user meant, requests, failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from botdrill.scenarios import load_pack
from botdrill.simulator import RunConfig, run_drill

from ._util import query


@pytest.fixture(scope="module")
def telecom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("triggers") / "t.duckdb"
    run_drill(RunConfig(db=str(db), pack="telecom", n=60, seed=1, run_id="t", perturb="typo:3"))
    return db


def test_crisis_cues_are_marked_on_what_the_user_meant_to_say(telecom: Path) -> None:
    cues = load_pack("telecom").triggers.crisis
    assert cues is not None
    clean = query(
        telecom,
        "select lower(text), list_contains(gold_acts, 'crisis_cue') from turns t join dialogues d "
        "using (dialogue_id) where t.speaker = 'user' and d.perturbation = 'none'",
    )
    marked = [text for text, is_cue in clean if is_cue]
    assert marked
    for text, is_cue in clean:  # on clean words the mark is exactly "a cue is said"
        assert is_cue == any(c in text.replace("\u2019", "'") for c in cues.cues), text
    # A typo in "ambulance" does not hide the crisis from the gold labels: the perturbed twin keeps the mark.
    assert query(
        telecom,
        """select count(*) from turns c join dialogues dc using (dialogue_id)
           join dialogues dp on dp.pair_id = dc.pair_id and dp.perturbation <> 'none'
           join turns p on p.dialogue_id = dp.dialogue_id and p.turn_idx = c.turn_idx
           where dc.perturbation = 'none' and c.speaker = 'user' and p.speaker = 'user'
             and c.text = p.text and list_contains(c.gold_acts, 'crisis_cue')
                 <> list_contains(p.gold_acts, 'crisis_cue')""",
    ) == [(0,)]


def test_crisis_dialogues_are_due_by_the_earliest_reason(telecom: Path) -> None:
    rows = query(
        telecom,
        "select gold_intent, escalation_trigger, escalation_deadline, escalation_within from dialogues "
        "where gold_intent in ('threat_of_self_harm', 'medical_emergency') and complexity = 'simple'",
    )
    assert rows
    for intent, trigger, deadline, within in rows:
        assert trigger in ("crisis", "intent"), intent
        # Said in the first message, a crisis cue (one turn) beats the intent's window.
        assert deadline <= within


def test_every_must_dialogue_has_a_trigger_and_a_deadline(telecom: Path) -> None:
    assert query(
        telecom,
        "select count(*) from dialogues where expected_escalation = 'must' "
        "and (escalation_trigger is null or escalation_deadline is null)",
    ) == [(0,)]
    assert query(
        telecom,
        "select count(*) from dialogues where expected_escalation <> 'must' "
        "and (escalation_trigger is not null or escalation_deadline is not null)",
    ) == [(0,)]
