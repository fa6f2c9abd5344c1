"""Dialogue-level perturbations: things people do that are not edits of one message.

They are registered here so that `--perturb` knows them and reports list them; the user simulator
(`_user.py`) and the simulated clock act them out and record an `Edit` on the turn where each one happens.
"""

from __future__ import annotations

from ._perturb import register_dialogue

register_dialogue(
    "vague_opening",
    "The first message hints at the problem without naming it (intensity 2-3: the restatement is vague too).",
)
register_dialogue(
    "off_answer",
    "Answers a different question than the one asked: another slot, or the problem again "
    "(probability per question 0.25, 0.5, 0.75).",
)
register_dialogue(
    "topic_switch",
    "Asks about something unrelated mid-way, then comes back to the problem: after the 2nd reply, "
    "after the 1st, or after the 1st and the 3rd.",
)
register_dialogue(
    "abandon",
    "Leaves without a word after the 3rd, 2nd or 1st assistant reply, unless the problem is solved first.",
)
register_dialogue(
    "double_text",
    "Impatient: waits 30%, 10% or none of the persona's patience for a reply, then sends a nudge "
    '("hello??"); the clock decides whether it is sent before the reply.',
)
register_dialogue(
    "barge_in",
    "Impatient: waits 30%, 10% or none of the persona's patience for a reply, then types what it would "
    "have said next (a bare detail, or the problem again); the clock decides whether it beats the reply.",
)
