"""Paired runs from the command line: each scenario clean and perturbed, comparable in SQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from botdrill.agents import perturbations
from botdrill.simulator import RunConfig, run_drill

from ._util import invoke, one_line, query

PERTURB = "typo:3,self_correction,fragments,barge_in:3,abandon:3,filler+casing"
N = 30


@pytest.fixture(scope="module")
def paired(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("paired") / "p.duckdb"
    result = invoke(
        "run", "-n", str(N), "--seed", "5", "--db", str(db), "--run-id", "p", "--perturb", PERTURB, "-q"
    )
    assert result.exit_code == 0, result.stderr
    return db


def test_every_scenario_runs_clean_and_once_per_perturbation(paired: Path) -> None:
    rows = query(
        paired, "select variant, count(*), count(distinct pair_id) from dialogues group by 1 order by 1"
    )
    assert rows == sorted(
        (v, N, N)
        for v in [
            "none",
            "typo:3",
            "self_correction:2",
            "fragments:2",
            "barge_in:3",
            "abandon:3",
            "filler:2+casing:2",
        ]
    )
    # A pair shares persona, goal and seed; only the variant differs.
    assert query(
        paired,
        "select count(*) from (select pair_id from dialogues group by 1 "
        "having count(distinct (persona, gold_intent, gold_slots::varchar, seed, scenario_id)) > 1)",
    ) == [(0,)]


def test_the_issue_query_works_and_perturbations_hurt_somewhere(paired: Path) -> None:
    rows = dict(query(paired, "select perturbation, avg(success::int) from dialogues group by 1"))
    assert set(rows) == {
        "none",
        "typo",
        "self_correction",
        "fragments",
        "barge_in",
        "abandon",
        "filler+casing",
    }
    assert min(rows.values()) < rows["none"]  # the drill finds some brittleness


def test_pairs_view_puts_each_perturbed_dialogue_beside_its_clean_twin(paired: Path) -> None:
    assert query(paired, "select count(*), count(distinct clean_dialogue_id) from pairs") == [(6 * N, N)]
    mismatched = query(
        paired,
        "select count(*) from pairs p join dialogues c on c.dialogue_id = p.clean_dialogue_id "
        "where c.perturbation <> 'none' or c.success <> p.clean_success",
    )
    assert mismatched == [(0,)]


def test_edits_are_stored_with_spans_into_their_message(paired: Path) -> None:
    kinds = {k for (k,) in query(paired, "select distinct kind from edits")}
    assert {"break", "barge_in", "abandon", "filler", "casing"} <= kinds
    assert any(k.startswith("typo.") for k in kinds)
    # Every edit's span lies in its message...
    bad = query(
        paired,
        """select count(*) from edits e join turns t using (dialogue_id, turn_idx)
           where e."start" < 0 or e."end" > length(t.text) or e."start" > e."end" """,
    )
    assert bad == [(0,)]
    # ...and holds what the edit put there, unless a later perturbation of a chain edited over it.
    changed = query(
        paired,
        """select count(*) from edits e join turns t using (dialogue_id, turn_idx) join dialogues d
           using (dialogue_id)
           where d.perturbation not like '%+%'
             and substr(t.text, e."start" + 1, e."end" - e."start") <> e.after""",
    )
    assert changed == [(0,)]
    # No edit on the clean dialogues.
    assert query(
        paired,
        "select count(*) from edits e join dialogues d using (dialogue_id) where d.perturbation = 'none' "
        "and e.perturbation <> 'correction'",
    ) == [(0,)]
    # The only marks on a clean dialogue are the values a `correction` user said by mistake.
    assert query(
        paired,
        "select count(*) from edits e join dialogues d using (dialogue_id) "
        "where e.perturbation = 'correction' "
        "and (d.complexity <> 'correction' or e.kind <> 'retracted_value')",
    ) == [(0,)]


def test_gold_spans_point_at_their_values_in_every_stored_message(paired: Path) -> None:
    rows = query(
        paired,
        """select t.text, s.slot, s.value, s."start", s."end", d.gold_slots[s.slot]
           from turns t join dialogues d using (dialogue_id), unnest(t.gold_slots) as u(s)
           where t.speaker = 'user'""",
    )
    assert len(rows) > N
    from botdrill.scenarios import load_pack, normalize_value

    pack = load_pack("banking")
    for text, slot, value, start, end, goal in rows:
        assert normalize_value(pack.slot(slot), text[start:end], pack) == value == goal, (text, slot, value)


def test_barge_ins_are_sent_while_a_reply_is_pending(paired: Path) -> None:
    # At a barge-in, the user has sent more messages than the assistant has answered.
    rows = query(
        paired,
        """with marks as (
               select t.dialogue_id, t.turn_idx from turns t join edits e using (dialogue_id, turn_idx)
               where e.kind = 'barge_in')
           select m.dialogue_id, m.turn_idx,
                  count(*) filter (where t.speaker = 'user' and t.text <> '' and t.turn_idx < m.turn_idx),
                  count(*) filter (where t.speaker = 'assistant' and t.turn_idx < m.turn_idx)
           from marks m join turns t using (dialogue_id) group by all""",
    )
    assert rows, "no barge-in at intensity 3 in 30 dialogues"
    assert all(users > replies for _, _, users, replies in rows)


def test_abandoned_dialogues_end_with_an_empty_user_row(paired: Path) -> None:
    rows = query(
        paired,
        """select d.end_reason, t.text, t.gold_acts from dialogues d join turns t using (dialogue_id)
           where d.perturbation = 'abandon' and t.turn_idx = d.user_turns + d.assistant_turns""",
    )
    abandoned = [r for r in rows if r[0] == "user_abandoned"]
    assert abandoned
    assert all(text == "" and acts == ["abandon"] for _, text, acts in abandoned)


def test_clean_twins_do_not_depend_on_what_runs_beside_them(paired: Path, tmp_path: Path) -> None:
    db = tmp_path / "clean.duckdb"
    run_drill(RunConfig(db=str(db), n=N, seed=5, run_id="p", perturb="none"))
    clean_alone = query(db, "select pair_id, transcript_sha256 from dialogues order by 1")
    clean_paired = query(
        paired, "select pair_id, transcript_sha256 from dialogues where perturbation = 'none' order by 1"
    )
    assert clean_alone == clean_paired


@pytest.mark.parametrize(
    ("perturb", "message"),
    [
        ("tpyo", "unknown perturbation 'tpyo'"),
        ("typo:7", "'typo:7' is not NAME or NAME:INTENSITY"),
        ("typo+", "'' is not"),
    ],
)
def test_a_bad_perturb_list_exits_2_and_writes_nothing(tmp_path: Path, perturb: str, message: str) -> None:
    db = tmp_path / "x.duckdb"
    result = invoke("run", "-n", "2", "--db", str(db), "--perturb", perturb)
    assert result.exit_code == 2
    assert message in one_line(result.stderr)
    assert not db.exists()


def test_perturbations_command_lists_every_one() -> None:
    result = invoke("perturbations")
    assert result.exit_code == 0, result.stderr
    for name in perturbations():
        assert name in result.stdout
