"""The human-team capacity model: checked against Erlang C, then each knob on its own."""

from __future__ import annotations

import statistics
from typing import Any

import pytest
from pydantic import ValidationError

from botdrill.policies._capacity import (
    AgentShift,
    CapacityConfig,
    CapacityReport,
    HandoffProfile,
    IntentHandoff,
    Surge,
    erlang_c_wait,
    parse_surge,
    simulate_capacity,
)
from botdrill.scenarios import load_pack

ONE_INTENT = HandoffProfile(intents=(IntentHandoff(intent="lost_card", share=1.0, handoff_rate=1.0),))
TWO_CLASSES = HandoffProfile(
    intents=(
        IntentHandoff(intent="report_fraud", share=0.3, handoff_rate=1.0, critical=True),
        IntentHandoff(intent="check_balance", share=0.7, handoff_rate=1.0),
    )
)


def _conserved(report: CapacityReport) -> bool:
    return all(s.handed_off == s.served + s.abandoned + s.unanswered for s in report.scopes())


# ------------------------------------------------------------------------------------------------ Erlang C


def test_erlang_c_matches_hand_computed_values() -> None:
    # M/M/3, lambda 20/h, mu 10/h: a = 2, Erlang B(3, 2) = 4/19, C = (4/19) / (1 - (2/3)(15/19)) = 4/9,
    # Wq = C / (c mu - lambda) = (4/9) / 10 h = 160 s.
    assert erlang_c_wait(20, 10, 3) * 3600 == pytest.approx(160.0, rel=1e-12)
    # M/M/1: Wq = rho / (mu - lambda).
    assert erlang_c_wait(0.5, 1.0, 1) == pytest.approx(1.0)
    assert erlang_c_wait(0, 1.0, 2) == 0.0
    assert erlang_c_wait(30, 10, 3) == float("inf")
    with pytest.raises(ValueError, match="servers"):
        erlang_c_wait(1, 1, 0)


@pytest.fixture(scope="module")
def mmc_reports() -> list[CapacityReport]:
    """M/M/3 at rho 2/3 (lambda 20/h, 6 min each): hand-off at once, nobody gives up, no priority.

    4000 h is about 80,000 customers a seed; the 10 h warmup drops the empty start. The desk closes at the
    end, so the few still queued then are unanswered rather than served.
    """
    return [
        simulate_capacity(
            CapacityConfig(
                arrivals_per_hour=20,
                shift_hours=4000,
                agents=3,
                handling_minutes=6,
                critical_priority=False,
                warmup_minutes=600,
                seed=seed,
            ),
            ONE_INTENT,
        )
        for seed in range(8)
    ]


def test_mean_wait_matches_erlang_c(mmc_reports: list[CapacityReport]) -> None:
    # Waits are strongly autocorrelated at rho 2/3: over 16 seeds one 4000 h run's mean wait had a standard
    # deviation of about 4% of 160 s, so the mean of 8 runs has about 1.5%; 5% is more than 3 of those, and
    # still tight enough to catch a wrong queue discipline or service law (each moves the mean by far more).
    expected = erlang_c_wait(20, 10, 3) * 3600
    waits = [r.all.wait_mean_s for r in mmc_reports]
    assert all(w is not None for w in waits)
    simulated = statistics.mean(w for w in waits if w is not None)
    assert simulated == pytest.approx(expected, rel=0.05)
    assert all(r.all.abandoned == 0 and r.all.unanswered < r.all.handed_off / 1000 for r in mmc_reports)


def test_utilisation_is_offered_load_per_agent(mmc_reports: list[CapacityReport]) -> None:
    # Busy time is a sum over ~80,000 handling times, so it is tight: about 0.3% per run.
    for report in mmc_reports:
        assert report.utilisation == pytest.approx(20 / (3 * 10), rel=0.02)
        assert report.agent_seconds_available == pytest.approx(3 * (4000 - 10) * 3600)


def test_lognormal_handling_keeps_the_mean() -> None:
    config = CapacityConfig(
        arrivals_per_hour=20,
        shift_hours=1000,
        agents=3,
        handling_minutes=6,
        service="lognormal",
        service_cv=2,
    )
    assert simulate_capacity(config, ONE_INTENT).utilisation == pytest.approx(2 / 3, rel=0.03)


# ------------------------------------------------------------------------------------------------ priority


def _two_class_waits(critical_priority: bool) -> tuple[float, float]:
    config = CapacityConfig(
        arrivals_per_hour=27,
        shift_hours=300,
        agents=3,
        handling_minutes=6,
        critical_priority=critical_priority,
        warmup_minutes=300,
        seed=3,
    )
    report = simulate_capacity(config, TWO_CLASSES)
    assert report.critical.wait_mean_s is not None and report.normal.wait_mean_s is not None
    return report.critical.wait_mean_s, report.normal.wait_mean_s


def test_critical_priority_serves_critical_first_under_load() -> None:
    critical, normal = _two_class_waits(critical_priority=True)
    assert critical < 0.25 * normal


def test_without_priority_both_classes_wait_alike() -> None:
    critical, normal = _two_class_waits(critical_priority=False)
    assert critical == pytest.approx(normal, rel=0.15)


# -------------------------------------------------------------------------------------------------- surges


def test_surge_raises_waits_and_abandonment_during_and_after_it() -> None:
    def run(surges: list[Any]) -> CapacityReport:
        # Counting from 12:00 (warmup 3 h) measures the surge hour and the hours after it.
        return simulate_capacity(
            CapacityConfig(
                arrivals_per_hour=30,
                shift_hours=8,
                agents=4,
                handling_minutes=6,
                patience_minutes=10,
                warmup_minutes=180,
                surges=surges,
                seed=5,
            ),
            TWO_CLASSES,
        )

    calm, surged = run([]), run(["report_fraud:10x@12:00-13:00"])
    assert calm.all.wait_mean_s is not None and surged.all.wait_mean_s is not None
    assert surged.all.wait_mean_s > 2 * calm.all.wait_mean_s
    assert (surged.all.abandonment_rate or 0) > 2 * (calm.all.abandonment_rate or 0)
    assert surged.critical.handed_off > 2 * calm.critical.handed_off
    # Same seed, same customers of the intent that did not surge: only their waits change.
    assert surged.normal.handed_off == calm.normal.handed_off
    assert surged.utilisation is not None and calm.utilisation is not None
    assert surged.utilisation > calm.utilisation


def test_parse_surge() -> None:
    assert parse_surge("report_fraud:10x@13:00-14:00", shift_start="09:00") == Surge(
        intent="report_fraud", factor=10, start_s=4 * 3600, end_s=5 * 3600
    )
    assert parse_surge("pay_bill:0.5@09:00-17:00", "09:00", 8).factor == 0.5
    assert parse_surge("report_fraud:3x@01:00-02:00", "22:00", 8).start_s == 3 * 3600


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("report_fraud@13:00-14:00", "not in the form"),
        ("report_fraud:10x 13:00-14:00", "not in the form"),
        ("report_fraud:10x@14:00-13:00", "not after it starts"),
        ("report_fraud:0x@13:00-14:00", "more than 0"),
        ("report_fraud:2x@08:00-10:00", "before the shift starts"),
        ("report_fraud:2x@16:00-18:00", "after the 8 h shift"),
        ("report_fraud:2x@25:00-26:00", "not a clock time"),
    ],
)
def test_parse_surge_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_surge(text, shift_start="09:00", shift_hours=8)


def test_surges_are_checked_against_the_shift_and_the_profile() -> None:
    with pytest.raises(ValidationError, match="after the 8 h shift"):
        CapacityConfig(arrivals_per_hour=10, surges=["report_fraud:2x@16:00-18:00"])
    with pytest.raises(ValidationError, match="after the shift"):
        CapacityConfig(arrivals_per_hour=10, surges=[Surge(intent="x", factor=2, start_s=0, end_s=9 * 3600)])
    config = CapacityConfig(arrivals_per_hour=10, surges=["pay_bill:2x@10:00-11:00"])
    with pytest.raises(ValueError, match="not in the profile"):
        simulate_capacity(config, TWO_CLASSES)


# --------------------------------------------------------------------------------------------- abandonment


def test_short_patience_under_overload_abandons_and_shortens_waits() -> None:
    def run(patience: float | None) -> CapacityReport:
        # 40 an hour at 6 minutes each is 4 agents' work for 2 agents.
        return simulate_capacity(
            CapacityConfig(
                arrivals_per_hour=40, shift_hours=8, agents=2, handling_minutes=6, patience_minutes=patience
            ),
            ONE_INTENT,
        )

    patient, impatient = run(None), run(2)
    assert patient.all.abandoned == 0 and patient.all.abandonment_rate == 0
    assert impatient.all.abandoned > 0
    assert patient.all.wait_mean_s is not None and impatient.all.wait_mean_s is not None
    assert impatient.all.wait_mean_s < patient.all.wait_mean_s / 5
    assert impatient.all.sla_breaches >= impatient.all.abandoned
    assert _conserved(patient) and _conserved(impatient)


# ---------------------------------------------------------------------------------------------- the roster


def test_nobody_is_served_before_the_first_agent_comes_on_duty() -> None:
    # Everyone reaches the desk in the first hour; 50 agents start at 01:00 and take them all at once, so
    # each waits exactly until then: uniform arrivals give a mean wait of half an hour.
    report = simulate_capacity(
        CapacityConfig(
            arrivals_per_hour=60, shift_hours=1, agents=[(50, 3600, 7200)], sla_seconds_normal=1, seed=2
        ),
        ONE_INTENT,
    )
    assert report.all.handed_off > 30
    assert report.all.served == report.all.handed_off
    assert report.all.sla_breaches == report.all.handed_off
    assert report.all.wait_mean_s == pytest.approx(1800, rel=0.15)
    assert report.all.wait_p99_s is not None and report.all.wait_p99_s <= 3600


def test_nobody_is_served_after_the_last_agent_goes_off_duty() -> None:
    # Counting customers from 01:00 (warmup), when the only agent leaves: all of them stay unanswered.
    report = simulate_capacity(
        CapacityConfig(arrivals_per_hour=20, shift_hours=2, agents=[(1, 0, 3600)], warmup_minutes=60),
        ONE_INTENT,
    )
    assert report.all.handed_off > 0
    assert report.all.served == 0 and report.all.unanswered == report.all.handed_off
    assert report.all.sla_breaches == report.all.handed_off
    # The only agent time in the window is the leaving agent finishing the call in hand.
    assert report.agent_seconds_busy == pytest.approx(report.agent_seconds_available)


def test_available_agent_time_follows_the_roster() -> None:
    roster = [AgentShift(count=3, start_s=0, end_s=7200), (1, 3600, 14400)]
    idle = simulate_capacity(CapacityConfig(arrivals_per_hour=0, shift_hours=4, agents=roster), ONE_INTENT)
    assert idle.agent_seconds_available == pytest.approx(3 * 7200 + 10800)
    assert idle.utilisation == 0.0 and idle.all.handed_off == 0 and idle.all.wait_mean_s is None
    busy = simulate_capacity(CapacityConfig(arrivals_per_hour=60, shift_hours=4, agents=roster), ONE_INTENT)
    assert busy.utilisation is not None and 0.5 < busy.utilisation <= 1.0
    assert _conserved(busy)


# ------------------------------------------------------------------------------------ determinism, output


def test_same_seed_same_report_other_seed_other_report() -> None:
    config = CapacityConfig(arrivals_per_hour=30, agents=3, patience_minutes=5, seed=11)
    first = simulate_capacity(config, TWO_CLASSES)
    assert simulate_capacity(config, TWO_CLASSES) == first
    assert simulate_capacity(config.model_copy(update={"seed": 12}), TWO_CLASSES) != first


def test_rows_and_summary() -> None:
    report = simulate_capacity(CapacityConfig(arrivals_per_hour=30, agents=3, seed=1), TWO_CLASSES)
    rows = report.to_rows()
    assert [r["scope"] for r in rows] == [
        "all",
        "critical",
        "normal",
        "intent:report_fraud",
        "intent:check_balance",
    ]
    assert len({tuple(r) for r in rows}) == 1
    assert rows[0]["utilisation"] == report.utilisation and rows[1]["utilisation"] is None
    assert rows[0]["handed_off"] == rows[1]["handed_off"] + rows[2]["handed_off"]
    assert rows[0]["contacts"] == rows[3]["contacts"] + rows[4]["contacts"]
    lines = report.summary_lines()
    assert lines[0].startswith("all: ") and lines[-1].startswith("agent utilisation")
    assert _conserved(report)


# --------------------------------------------------------------------------------------- profile, config


def test_profile_from_rows() -> None:
    rows: list[Any] = [
        ("report_fraud", True, 50, 45, 80.0),
        {
            "intent": "check_balance",
            "critical": False,
            "dialogues": 150,
            "handed_off": 0,
            "mean_seconds_to_handoff": None,
        },
    ]
    profile = HandoffProfile.from_rows(rows)
    fraud, balance = profile.get("report_fraud"), profile.get("check_balance")
    assert (fraud.share, fraud.handoff_rate, fraud.critical, fraud.seconds_to_handoff) == (
        0.25,
        0.9,
        True,
        80,
    )
    assert (balance.share, balance.handoff_rate, balance.seconds_to_handoff) == (0.75, 0.0, 0.0)
    # A drill over-samples critical intents: real traffic shares come from the weights.
    weighted = HandoffProfile.from_rows(rows, weights={"report_fraud": 1, "check_balance": 99})
    assert weighted.get("report_fraud").share == pytest.approx(0.01)
    assert weighted.get("report_fraud").handoff_rate == 0.9
    with pytest.raises(KeyError, match="no intent"):
        profile.get("pay_bill")


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([], "no rows"),
        ([("a", False, 10, 11, 1.0)], "handed_off <= dialogues"),
        ([("a", False, 0, 0, None)], "dialogues > 0"),
        ([("a", False, 10)], "expected 5"),
        ([{"intent": "a"}], "lacks critical"),
        ([("a", False, 10, 1, 1.0), ("a", False, 10, 1, 1.0)], "more than once"),
    ],
)
def test_profile_from_bad_rows(rows: list[Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HandoffProfile.from_rows(rows)


def test_profile_from_pack() -> None:
    pack = load_pack("banking")
    profile = HandoffProfile.from_pack(pack)
    assert sum(i.share for i in profile.intents) == pytest.approx(1.0)
    total = sum(i.weight for i in pack.intents)
    for intent in pack.intents:
        entry = profile.get(intent.name)
        assert entry.share == pytest.approx(intent.weight / total)
        assert entry.critical == intent.critical
        expected = {"must": 1.0, "may": 0.2, "never": 0.02}[intent.escalation.expected]
        assert entry.handoff_rate == expected
    custom = HandoffProfile.from_pack(pack, {"never": 0.0})
    assert {i.handoff_rate for i in custom.intents if not i.critical} <= {0.0, 0.2}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"arrivals_per_hour": -1}, "greater than or equal to 0"),
        ({"arrivals_per_hour": 10, "agents": 0}, "at least 1"),
        ({"arrivals_per_hour": 10, "agents": []}, "at least one shift"),
        ({"arrivals_per_hour": 10, "agents": [(2, 3600, 0)]}, "before it starts"),
        ({"arrivals_per_hour": 10, "agents": [(2, 0)]}, "count, start_s, end_s"),
        ({"arrivals_per_hour": 10, "handling_minutes": -6}, "greater than 0"),
        ({"arrivals_per_hour": 10, "patience_minutes": 0}, "greater than 0"),
        ({"arrivals_per_hour": 10, "shift_hours": 1, "warmup_minutes": 60}, "warmup"),
        ({"arrivals_per_hour": 10, "shift_start": "9am"}, "not a clock time"),
        ({"arrivals_per_hour": 10, "agent": 3}, "Extra inputs"),
    ],
)
def test_bad_config(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CapacityConfig(**fields)


@pytest.mark.parametrize(
    ("intents", "message"),
    [
        ([{"intent": "a", "share": 0.5, "handoff_rate": 1.0}], "sum to 1"),
        ([{"intent": "a", "share": 1.0, "handoff_rate": 1.5}], "less than or equal to 1"),
        ([{"intent": "a", "share": 1.0, "handoff_rate": 0.5, "seconds_to_handoff": -1}], "greater than or"),
        ([], "at least 1"),
    ],
)
def test_bad_profile(intents: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        HandoffProfile.model_validate({"intents": intents})
