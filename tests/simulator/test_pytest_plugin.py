"""The pytest plugin: a team's own test suite drills its bot with the `botdrill_drill` fixture."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_the_fixture_drills_a_bot_and_gates_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_my_bot="""
        def always_transfer(messages):
            return "I'm transferring you to a colleague now."

        def test_reference_bot_passes(botdrill_drill):
            drill = botdrill_drill(n=12, perturb="typo", seed=3)
            assert drill.metric("success_rate") > 0.3
            drill.check("escalation_recall<0.5")
            assert drill.sql("select count(*) from dialogues")[0][0] == 24

        def test_a_bot_that_always_transfers_over_escalates(botdrill_drill):
            drill = botdrill_drill(always_transfer, n=12, perturb="none")
            assert drill.sql("select distinct target from runs") == [("always_transfer",)]
            drill.check("over_escalation_rate>0.5")
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*botdrill gate failed:*", "*over_escalation_rate>0.5: over_escalation_rate = 1*"]
    )


def test_the_plugin_is_registered_by_entry_point() -> None:
    from importlib.metadata import entry_points

    (plugin,) = [e for e in entry_points(group="pytest11") if e.name == "botdrill"]
    assert plugin.value == "botdrill.simulator.pytest_plugin"
    assert hasattr(plugin.load(), "botdrill_drill")
