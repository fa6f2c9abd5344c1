"""The DuckDB store: one file per project, one writer, bulk writes, dialogues whole or not at all.

Finished dialogues are buffered and written in batches: each batch becomes four Arrow tables (dialogues,
turns, slot checks, edits) inserted in one transaction, so a dialogue's rows land together or not at all,
and a process killed mid-run loses only the dialogues not yet flushed, which a resumed run simulates again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from botdrill.agents._llm_store import create_table as create_llm_table
from botdrill.scenarios import BotdrillError

from ._records import DialogueRecord, SlotCheck, TurnRecord

SCHEMA_VERSION = 5

_TABLES = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER NOT NULL,
    botdrill_version VARCHAR NOT NULL,
    applied_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY,
    created_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    status VARCHAR NOT NULL,
    pack VARCHAR NOT NULL,
    pack_version VARCHAR NOT NULL,
    pack_sha256 VARCHAR NOT NULL,
    target VARCHAR NOT NULL,
    seed BIGINT NOT NULL,
    n_dialogues INTEGER NOT NULL,
    max_turns INTEGER NOT NULL,
    concurrency INTEGER NOT NULL,
    config JSON NOT NULL,
    versions JSON NOT NULL
);
CREATE TABLE IF NOT EXISTS dialogues (
    run_id VARCHAR NOT NULL,
    dialogue_id VARCHAR PRIMARY KEY,
    idx INTEGER NOT NULL,
    pair_id VARCHAR NOT NULL,
    trial INTEGER NOT NULL,
    perturbation VARCHAR NOT NULL,
    intensity INTEGER NOT NULL,
    variant VARCHAR NOT NULL,
    scenario_id VARCHAR NOT NULL,
    seed BIGINT NOT NULL,
    persona VARCHAR NOT NULL,
    complexity VARCHAR NOT NULL,
    walk VARCHAR[] NOT NULL,
    gold_intent VARCHAR NOT NULL,
    critical BOOLEAN NOT NULL,
    gold_slots MAP(VARCHAR, VARCHAR) NOT NULL,
    routed_intent VARCHAR,
    routing_source VARCHAR NOT NULL,
    misrouted BOOLEAN NOT NULL,
    expected_escalation VARCHAR NOT NULL,
    escalation_within INTEGER,
    escalation_trigger VARCHAR,
    escalation_deadline INTEGER,
    escalated BOOLEAN NOT NULL,
    escalation_turn INTEGER,
    escalation_source VARCHAR,
    escalated_by VARCHAR,
    policy VARCHAR NOT NULL,
    user_requested_human BOOLEAN NOT NULL,
    outcome VARCHAR NOT NULL,
    success BOOLEAN NOT NULL,
    end_reason VARCHAR NOT NULL,
    user_turns INTEGER NOT NULL,
    assistant_turns INTEGER NOT NULL,
    slot_errors INTEGER NOT NULL,
    error_type VARCHAR,
    error_message VARCHAR,
    sim_seconds DOUBLE NOT NULL,
    transcript_sha256 VARCHAR NOT NULL,
    simulator_fault VARCHAR,
    llm_calls INTEGER NOT NULL DEFAULT 0,
    llm_cached INTEGER NOT NULL DEFAULT 0,
    llm_prompt_tokens INTEGER NOT NULL DEFAULT 0,
    llm_completion_tokens INTEGER NOT NULL DEFAULT 0,
    llm_cost_usd DOUBLE
);
CREATE TABLE IF NOT EXISTS turns (
    run_id VARCHAR NOT NULL,
    dialogue_id VARCHAR NOT NULL,
    turn_idx INTEGER NOT NULL,
    speaker VARCHAR NOT NULL,
    text VARCHAR NOT NULL,
    sim_time DOUBLE NOT NULL,
    gold_intent VARCHAR,
    gold_acts VARCHAR[],
    gold_slots STRUCT(slot VARCHAR, value VARCHAR, "start" INTEGER, "end" INTEGER)[],
    part INTEGER,
    parts INTEGER,
    intent VARCHAR,
    slots MAP(VARCHAR, VARCHAR),
    handoff BOOLEAN,
    handoff_source VARCHAR,
    escalated_by VARCHAR,
    confidence DOUBLE,
    raw JSON,
    latency_ms DOUBLE,
    error_type VARCHAR,
    intent_source VARCHAR,
    judged_by VARCHAR,
    user_fault VARCHAR,
    PRIMARY KEY (dialogue_id, turn_idx)
);
CREATE TABLE IF NOT EXISTS slot_checks (
    run_id VARCHAR NOT NULL,
    dialogue_id VARCHAR NOT NULL,
    slot VARCHAR NOT NULL,
    expected VARCHAR NOT NULL,
    captured VARCHAR,
    captured_normalized VARCHAR,
    status VARCHAR NOT NULL,
    PRIMARY KEY (dialogue_id, slot)
);
CREATE TABLE IF NOT EXISTS edits (
    run_id VARCHAR NOT NULL,
    dialogue_id VARCHAR NOT NULL,
    turn_idx INTEGER NOT NULL,
    edit_idx INTEGER NOT NULL,
    perturbation VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    "start" INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    before VARCHAR NOT NULL,
    after VARCHAR NOT NULL,
    intensity INTEGER NOT NULL,
    PRIMARY KEY (dialogue_id, turn_idx, edit_idx)
);
CREATE TABLE IF NOT EXISTS capacity (
    capacity_id VARCHAR NOT NULL,
    run_id VARCHAR,
    created_at TIMESTAMP NOT NULL,
    config JSON NOT NULL,
    scope VARCHAR NOT NULL,
    contacts INTEGER NOT NULL,
    handed_off INTEGER NOT NULL,
    served INTEGER NOT NULL,
    abandoned INTEGER NOT NULL,
    unanswered INTEGER NOT NULL,
    abandonment_rate DOUBLE,
    wait_mean_s DOUBLE,
    wait_p50_s DOUBLE,
    wait_p90_s DOUBLE,
    wait_p99_s DOUBLE,
    sla_breaches INTEGER NOT NULL,
    sla_breach_rate DOUBLE,
    utilisation DOUBLE,
    PRIMARY KEY (capacity_id, scope)
);
CREATE TABLE IF NOT EXISTS shrinks (
    run_id VARCHAR NOT NULL,
    dialogue_id VARCHAR NOT NULL,
    shrunk_dialogue_id VARCHAR,
    outcome VARCHAR NOT NULL,
    reproduced BOOLEAN NOT NULL,
    edits_before INTEGER NOT NULL,
    edits_after INTEGER NOT NULL,
    kept JSON NOT NULL,
    tests INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (dialogue_id)
);
CREATE TABLE IF NOT EXISTS coverage (
    run_id VARCHAR NOT NULL,
    level VARCHAR NOT NULL,
    intent VARCHAR,
    complexity VARCHAR,
    persona VARCHAR,
    perturbation VARCHAR,
    edge_kind VARCHAR,
    edge_source VARCHAR,
    edge_target VARCHAR,
    target DOUBLE,
    planned INTEGER,
    dialogues INTEGER NOT NULL,
    filled BOOLEAN NOT NULL
);CREATE TABLE IF NOT EXISTS batches (
    batch_id VARCHAR PRIMARY KEY,
    created_at TIMESTAMP NOT NULL,
    status VARCHAR NOT NULL,
    rolled_back_at TIMESTAMP,
    rollback_reason VARCHAR,
    parent_batch VARCHAR,
    spec VARCHAR NOT NULL,
    spec_sha256 VARCHAR NOT NULL,
    seeds_sha256 VARCHAR NOT NULL,
    config_hash VARCHAR NOT NULL,
    seed BIGINT NOT NULL,
    generator VARCHAR NOT NULL,
    methods VARCHAR[] NOT NULL,
    prompt_variants JSON NOT NULL,
    selection JSON NOT NULL,
    gate_counts JSON NOT NULL,
    diversity JSON NOT NULL,
    realism_auc DOUBLE,
    length_distance DOUBLE,
    vocabulary_distance DOUBLE,
    realism_n_real INTEGER,
    pii_replaced JSON NOT NULL,
    n_candidates INTEGER NOT NULL,
    n_kept INTEGER NOT NULL,
    changelog VARCHAR NOT NULL,
    config JSON NOT NULL,
    versions JSON NOT NULL
);
CREATE TABLE IF NOT EXISTS examples (
    batch_id VARCHAR NOT NULL,
    example_id VARCHAR PRIMARY KEY,
    idx INTEGER NOT NULL,
    kind VARCHAR NOT NULL,
    intent VARCHAR NOT NULL,
    near_intent VARCHAR,
    text VARCHAR NOT NULL,
    gold_slots STRUCT(slot VARCHAR, value VARCHAR, "start" INTEGER, "end" INTEGER)[],
    gold_acts VARCHAR[],
    edits JSON,
    turns JSON,
    method VARCHAR NOT NULL,
    origin VARCHAR NOT NULL,
    alignment DOUBLE,
    predicted_intent VARCHAR,
    slot_coverage DOUBLE,
    coherence DOUBLE,
    coherence_issues VARCHAR[],
    naturalness DOUBLE,
    kept BOOLEAN NOT NULL,
    rejected_by VARCHAR,
    pii_replaced INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ratings (
    batch_id VARCHAR NOT NULL,
    example_id VARCHAR NOT NULL,
    rater VARCHAR NOT NULL,
    dimension VARCHAR NOT NULL,
    value INTEGER NOT NULL,
    source VARCHAR NOT NULL,
    imported_at TIMESTAMP NOT NULL,
    PRIMARY KEY (example_id, rater, dimension)
);
CREATE TABLE IF NOT EXISTS agreement (
    batch_id VARCHAR NOT NULL,
    dimension VARCHAR NOT NULL,
    level VARCHAR NOT NULL,
    alpha DOUBLE,
    units INTEGER NOT NULL,
    raters INTEGER NOT NULL,
    ratings INTEGER NOT NULL,
    computed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (batch_id, dimension)
);
CREATE TABLE IF NOT EXISTS calibrations (
    batch_id VARCHAR NOT NULL,
    gate VARCHAR NOT NULL,
    dimension VARCHAR NOT NULL,
    threshold DOUBLE NOT NULL,
    previous_threshold DOUBLE,
    balanced_accuracy DOUBLE NOT NULL,
    n INTEGER NOT NULL,
    kept_good INTEGER NOT NULL,
    kept_bad INTEGER NOT NULL,
    dropped_good INTEGER NOT NULL,
    dropped_bad INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL
);
"""

# Version 1 files (before paired runs) gain the new columns; their dialogues were all clean.
_FROM_V1 = """
ALTER TABLE dialogues ADD COLUMN pair_id VARCHAR;
ALTER TABLE dialogues ADD COLUMN perturbation VARCHAR DEFAULT 'none';
ALTER TABLE dialogues ADD COLUMN intensity INTEGER DEFAULT 0;
ALTER TABLE dialogues ADD COLUMN variant VARCHAR DEFAULT 'none';
ALTER TABLE dialogues ADD COLUMN success BOOLEAN;
UPDATE dialogues SET pair_id = dialogue_id, success = (outcome = 'success');
ALTER TABLE turns ADD COLUMN part INTEGER;
ALTER TABLE turns ADD COLUMN parts INTEGER;
UPDATE schema_version SET version = 2;
"""

# Version 2 files (before quotas, triggers and policies): every dialogue was simple, judged on its intent's
# rule alone, with no policy around the bot.
_FROM_V2 = """
ALTER TABLE dialogues ADD COLUMN trial INTEGER DEFAULT 0;
ALTER TABLE dialogues ADD COLUMN simulator_fault VARCHAR;
ALTER TABLE dialogues ADD COLUMN complexity VARCHAR DEFAULT 'simple';
ALTER TABLE dialogues ADD COLUMN walk VARCHAR[];
ALTER TABLE dialogues ADD COLUMN escalation_trigger VARCHAR;
ALTER TABLE dialogues ADD COLUMN escalation_deadline INTEGER;
ALTER TABLE dialogues ADD COLUMN escalated_by VARCHAR;
ALTER TABLE dialogues ADD COLUMN policy VARCHAR DEFAULT 'none';
UPDATE dialogues SET walk = [gold_intent],
    escalation_trigger = CASE WHEN expected_escalation = 'must' THEN 'intent' END,
    escalation_deadline = CASE WHEN expected_escalation = 'must' THEN escalation_within END;
ALTER TABLE turns ADD COLUMN escalated_by VARCHAR;
ALTER TABLE turns ADD COLUMN confidence DOUBLE;
UPDATE schema_version SET version = 3;
"""

# Version 3 files (before LLM users, judges and record/replay): no dialogue called an LLM, every intent was
# the bot's own, and every judged hand-off was the rule judge's.
_FROM_V3 = """
ALTER TABLE dialogues ADD COLUMN llm_calls INTEGER DEFAULT 0;
ALTER TABLE dialogues ADD COLUMN llm_cached INTEGER DEFAULT 0;
ALTER TABLE dialogues ADD COLUMN llm_prompt_tokens INTEGER DEFAULT 0;
ALTER TABLE dialogues ADD COLUMN llm_completion_tokens INTEGER DEFAULT 0;
ALTER TABLE dialogues ADD COLUMN llm_cost_usd DOUBLE;
ALTER TABLE turns ADD COLUMN intent_source VARCHAR;
ALTER TABLE turns ADD COLUMN judged_by VARCHAR;
ALTER TABLE turns ADD COLUMN user_fault VARCHAR;
UPDATE turns SET intent_source = 'exposed' WHERE intent IS NOT NULL;
UPDATE turns SET judged_by = 'rules' WHERE handoff_source = 'judged';
UPDATE schema_version SET version = 4;
"""

# Version 4 files (before training-data batches): the batch, example, rating, agreement and calibration
# tables are new and created empty.
_FROM_V4 = """
UPDATE schema_version SET version = 5;
"""

_VIEWS = """
-- Examples that count: kept by every gate, from batches that were not rolled back. Every export and
-- dataset build reads this view, so a rolled-back batch is out of them without being deleted.
CREATE OR REPLACE VIEW active_examples AS
SELECT e.* FROM examples e JOIN batches b USING (batch_id) WHERE e.kept AND b.status = 'active';

-- What each gate refused, per batch and intent.
CREATE OR REPLACE VIEW gate_rejections AS
SELECT batch_id, intent, kind, coalesce(rejected_by, 'kept') AS verdict, count(*) AS examples
FROM examples GROUP BY ALL;

-- The dialogues the assistant is scored on: every view below reads these, never the faults a simulated
-- user caused (a goal it left, a value it got wrong and never corrected, leaving before the bot could act).
CREATE OR REPLACE VIEW scored_dialogues AS
SELECT * FROM dialogues WHERE simulator_fault IS NULL;

-- The dialogues left out of every score, with the reason.
CREATE OR REPLACE VIEW simulator_faults AS
SELECT run_id, dialogue_id, pair_id, perturbation, gold_intent, persona, complexity, outcome, end_reason,
       simulator_fault
FROM dialogues WHERE simulator_fault IS NOT NULL;

CREATE OR REPLACE VIEW failures AS
SELECT d.run_id, d.dialogue_id, d.pair_id, d.perturbation, d.intensity, d.complexity, d.policy,
       d.gold_intent, d.routed_intent, d.outcome, d.critical, d.persona,
       d.expected_escalation, d.escalation_trigger, d.escalated, d.escalation_turn, d.escalation_deadline,
       d.escalation_within, d.slot_errors,
       d.end_reason, d.error_type, d.error_message, d.user_turns, d.assistant_turns
FROM scored_dialogues d
WHERE d.outcome NOT IN ('success', 'handed_off_on_request');

CREATE OR REPLACE VIEW confusion AS
SELECT run_id, gold_intent, coalesce(routed_intent, '(none)') AS routed_intent, count(*) AS dialogues
FROM scored_dialogues
GROUP BY run_id, gold_intent, coalesce(routed_intent, '(none)');

-- Routing accuracy counts a dialogue the bot never routed as wrong; it is NULL for a run whose bot
-- exposes no intent at all, where routing cannot be told from its words.
CREATE OR REPLACE VIEW intent_summary AS
WITH exposing AS (
    SELECT run_id, bool_or(routing_source <> 'none') AS exposes FROM scored_dialogues GROUP BY run_id
)
SELECT d.run_id, d.gold_intent, bool_or(d.critical) AS critical, count(*) AS dialogues,
       avg(CASE WHEN d.outcome = 'success' THEN 1.0 ELSE 0.0 END) AS success_rate,
       CASE WHEN bool_or(e.exposes)
            THEN avg(CASE WHEN d.routed_intent = d.gold_intent THEN 1.0 ELSE 0.0 END) END
           AS routing_accuracy,
       count(*) FILTER (WHERE expected_escalation = 'must') AS must_escalate,
       count(*) FILTER (WHERE expected_escalation = 'must' AND escalated) AS escalated_when_must,
       (count(*) FILTER (WHERE expected_escalation = 'must' AND escalated))::DOUBLE
           / nullif(count(*) FILTER (WHERE expected_escalation = 'must'), 0) AS escalation_recall,
       count(*) FILTER (WHERE outcome = 'assistant_error') AS errors
FROM scored_dialogues d JOIN exposing e USING (run_id)
GROUP BY d.run_id, d.gold_intent;

-- What each run's LLM calls (simulated users, assistants, judges) took, over every dialogue, scored or not:
-- `calls` were sent, `cached` came from the record/replay store; tokens count both.
CREATE OR REPLACE VIEW llm_usage AS
SELECT run_id, count(*) AS dialogues, sum(llm_calls) AS calls, sum(llm_cached) AS cached,
       sum(llm_prompt_tokens) AS prompt_tokens, sum(llm_completion_tokens) AS completion_tokens,
       sum(llm_cost_usd) AS cost_usd,
       avg(llm_prompt_tokens + llm_completion_tokens) AS tokens_per_dialogue,
       sum(llm_cost_usd) / count(*) AS cost_per_dialogue
FROM dialogues GROUP BY run_id;

-- Each scored dialogue with what its escalation was, as flags: the one place where recall, timeliness,
-- precision and over-escalation are defined, so every view (and the gate) that aggregates them agrees.
CREATE OR REPLACE VIEW handoff_flags AS
SELECT d.run_id, d.dialogue_id, d.gold_intent, d.critical, d.perturbation, d.policy, d.escalated,
       d.escalation_turn, d.escalated_by,
       d.expected_escalation = 'must' AS due,
       d.expected_escalation = 'must' AND d.escalated AS reached,
       d.expected_escalation = 'must' AND d.escalated
           AND d.escalation_turn <= coalesce(d.escalation_deadline, d.escalation_turn) AS on_time,
       d.escalated AND (d.expected_escalation IN ('must', 'may') OR d.user_requested_human) AS rightly,
       d.expected_escalation = 'never' AND NOT d.user_requested_human AS unasked_never,
       d.expected_escalation = 'never' AND NOT d.user_requested_human AND d.escalated AS over,
       h.seconds AS seconds_to_handoff
FROM scored_dialogues d
LEFT JOIN (SELECT dialogue_id, min(sim_time) AS seconds FROM turns WHERE handoff GROUP BY dialogue_id) h
    USING (dialogue_id);

-- Escalation scores per run, intent and perturbation: recall and timeliness over dialogues that called for
-- a hand-off (by their intent's rule or a trigger), precision over hand-offs (right when one was due or
-- allowed, or the user asked), over-escalation over never-escalate dialogues the user did not ask to hand
-- over, and time to hand-off in assistant turns and simulated seconds.
CREATE OR REPLACE VIEW escalation_scores AS
SELECT run_id, any_value(policy) AS policy, gold_intent, bool_or(critical) AS critical, perturbation,
       count(*) AS dialogues,
       count(*) FILTER (WHERE due) AS must_escalate,
       (count(*) FILTER (WHERE reached))::DOUBLE / nullif(count(*) FILTER (WHERE due), 0)
           AS escalation_recall,
       (count(*) FILTER (WHERE on_time))::DOUBLE / nullif(count(*) FILTER (WHERE due), 0) AS on_time_rate,
       count(*) FILTER (WHERE escalated) AS escalated,
       (count(*) FILTER (WHERE rightly))::DOUBLE / nullif(count(*) FILTER (WHERE escalated), 0)
           AS escalation_precision,
       (count(*) FILTER (WHERE over))::DOUBLE / nullif(count(*) FILTER (WHERE unasked_never), 0)
           AS over_escalation_rate,
       avg(escalation_turn) FILTER (WHERE escalated) AS mean_turns_to_handoff,
       avg(seconds_to_handoff) AS mean_seconds_to_handoff,
       quantile_cont(seconds_to_handoff, 0.9) AS p90_seconds_to_handoff
FROM handoff_flags
GROUP BY run_id, gold_intent, perturbation;

-- The triggers a run's dialogues met (the intent's own rule, a request for a person, repeated failure, a
-- crisis cue) and how the assistant honoured each: in time, late, or not at all.
CREATE OR REPLACE VIEW escalation_triggers AS
SELECT run_id, any_value(policy) AS policy, escalation_trigger AS trigger, perturbation,
       count(*) AS dialogues,
       count(*) FILTER (WHERE escalated AND escalation_turn <= escalation_deadline) AS on_time,
       count(*) FILTER (WHERE escalated AND escalation_turn > escalation_deadline) AS late,
       count(*) FILTER (WHERE NOT escalated) AS missed,
       (count(*) FILTER (WHERE escalated AND escalation_turn <= escalation_deadline))::DOUBLE / count(*)
           AS on_time_rate
FROM scored_dialogues
WHERE expected_escalation = 'must'
GROUP BY run_id, escalation_trigger, perturbation;

-- One row per run with its policy: the figures to compare two escalation policies (or two bots) that ran
-- on the same seed, pack and perturbations.
CREATE OR REPLACE VIEW run_scores AS
SELECT f.run_id, any_value(f.policy) AS policy, r.target, r.seed, r.pack,
       count(*) AS dialogues,
       avg(d.success::INTEGER) AS success_rate,
       (count(*) FILTER (WHERE f.reached))::DOUBLE / nullif(count(*) FILTER (WHERE f.due), 0)
           AS escalation_recall,
       (count(*) FILTER (WHERE f.on_time))::DOUBLE / nullif(count(*) FILTER (WHERE f.due), 0) AS on_time_rate,
       (count(*) FILTER (WHERE f.rightly))::DOUBLE / nullif(count(*) FILTER (WHERE f.escalated), 0)
           AS escalation_precision,
       (count(*) FILTER (WHERE f.over))::DOUBLE / nullif(count(*) FILTER (WHERE f.unasked_never), 0)
           AS over_escalation_rate,
       count(*) FILTER (WHERE f.escalated_by IS NOT NULL) AS policy_handoffs,
       avg(f.escalation_turn) FILTER (WHERE f.escalated) AS mean_turns_to_handoff,
       avg(f.seconds_to_handoff) AS mean_seconds_to_handoff
FROM handoff_flags f JOIN scored_dialogues d USING (dialogue_id) JOIN runs r ON r.run_id = f.run_id
GROUP BY f.run_id, r.target, r.seed, r.pack;

-- One row per perturbed dialogue next to its clean twin (same persona, goal and seed).
CREATE OR REPLACE VIEW pairs AS
SELECT p.run_id, p.pair_id, p.trial, p.scenario_id, p.gold_intent, p.critical, p.persona, p.perturbation,
       p.intensity, p.variant,
       c.dialogue_id AS clean_dialogue_id, p.dialogue_id AS perturbed_dialogue_id,
       c.success AS clean_success, p.success AS perturbed_success,
       c.outcome AS clean_outcome, p.outcome AS perturbed_outcome
FROM scored_dialogues p JOIN scored_dialogues c ON c.pair_id = p.pair_id AND c.perturbation = 'none'
WHERE p.perturbation <> 'none';

-- Conventions of the views below that roll up (routing, slot_scores, success_rates, pass_k's 'all',
-- brittleness's intents): a column rolled up over all its values reads '*', so one view answers
-- "per intent", "per perturbation" and "the whole run" alike. Filter on '*' (or on its absence) before
-- summing a view's rows, or every dialogue is counted once per grouping.

-- `confusion` by perturbation as well, to see where a perturbation sends the dialogues it breaks.
CREATE OR REPLACE VIEW confusion_by_perturbation AS
SELECT run_id, gold_intent, perturbation, coalesce(routed_intent, '(none)') AS routed_intent,
       count(*) AS dialogues
FROM scored_dialogues
GROUP BY run_id, gold_intent, perturbation, coalesce(routed_intent, '(none)');

-- Routing per run, gold intent and perturbation (either or both '*'): a dialogue the bot never routed
-- counts as wrong, and accuracy is NULL for a run whose bot exposes no intent at all (as in
-- intent_summary).
CREATE OR REPLACE VIEW routing AS
WITH exposing AS (
    SELECT run_id, bool_or(routing_source <> 'none') AS exposes FROM scored_dialogues GROUP BY run_id
)
SELECT d.run_id,
       CASE WHEN grouping(d.gold_intent) = 1 THEN '*' ELSE d.gold_intent END AS gold_intent,
       CASE WHEN grouping(d.perturbation) = 1 THEN '*' ELSE d.perturbation END AS perturbation,
       count(*) AS dialogues,
       count(*) FILTER (WHERE d.routed_intent = d.gold_intent) AS routed_right,
       count(*) FILTER (WHERE d.routed_intent IS NULL) AS unrouted,
       CASE WHEN bool_or(e.exposes)
            THEN (count(*) FILTER (WHERE d.routed_intent = d.gold_intent))::DOUBLE / count(*) END AS accuracy
FROM scored_dialogues d JOIN exposing e USING (run_id)
GROUP BY d.run_id, CUBE (d.gold_intent, d.perturbation);

-- Slot filling per run, gold intent, slot and perturbation (any of them '*'), over the gold slots: those
-- the bot could be judged on (exposed: it exposes slots at all), right, wrong, or never captured.
-- precision = correct / captured; recall = correct / exposed; completeness = captured / exposed.
CREATE OR REPLACE VIEW slot_scores AS
WITH counts AS (
    SELECT s.run_id,
           CASE WHEN grouping(d.gold_intent) = 1 THEN '*' ELSE d.gold_intent END AS gold_intent,
           CASE WHEN grouping(s.slot) = 1 THEN '*' ELSE s.slot END AS slot,
           CASE WHEN grouping(d.perturbation) = 1 THEN '*' ELSE d.perturbation END AS perturbation,
           count(*) AS gold,
           count(*) FILTER (WHERE s.status <> 'not_exposed') AS exposed,
           count(*) FILTER (WHERE s.status = 'correct') AS correct,
           count(*) FILTER (WHERE s.status = 'wrong') AS wrong,
           count(*) FILTER (WHERE s.status = 'missing') AS missing
    FROM slot_checks s JOIN scored_dialogues d USING (dialogue_id)
    GROUP BY s.run_id, CUBE (d.gold_intent, s.slot, d.perturbation)
)
SELECT run_id, gold_intent, slot, perturbation, gold, exposed, correct, wrong, missing,
       correct::DOUBLE / nullif(correct + wrong, 0) AS precision,
       correct::DOUBLE / nullif(exposed, 0) AS recall,
       (correct + wrong)::DOUBLE / nullif(exposed, 0) AS completeness
FROM counts;

-- Task success per run, gold intent, persona and perturbation (any of them '*').
CREATE OR REPLACE VIEW success_rates AS
SELECT run_id,
       CASE WHEN grouping(gold_intent) = 1 THEN '*' ELSE gold_intent END AS gold_intent,
       CASE WHEN grouping(persona) = 1 THEN '*' ELSE persona END AS persona,
       CASE WHEN grouping(perturbation) = 1 THEN '*' ELSE perturbation END AS perturbation,
       count(*) AS dialogues,
       count(*) FILTER (WHERE success) AS successes,
       avg(success::INTEGER) AS rate
FROM scored_dialogues
GROUP BY run_id, CUBE (gold_intent, persona, perturbation);

-- A task is one scenario run as one variant; its trials are its dialogues (`--trials`).
CREATE OR REPLACE VIEW task_trials AS
SELECT run_id, scenario_id, variant, perturbation, gold_intent, persona, critical,
       count(*) AS trials, count(*) FILTER (WHERE success) AS successes
FROM scored_dialogues
GROUP BY run_id, scenario_id, variant, perturbation, gold_intent, persona, critical;

-- pass^k as in tau-bench: a task with n trials and c successes passes k draws without replacement with
-- probability C(c, k) / C(n, k) = prod_{i<k} (c - i) / prod_{i<k} (n - i), averaged over the tasks with at
-- least k trials (`tasks`; pass_k is NULL when there are none). Both products are exact integers in a
-- DOUBLE for any number of trials a run allows, so the only rounding is the division. `trials` is the
-- fewest trials of any task in the group.
CREATE OR REPLACE VIEW pass_k AS
WITH per_task AS (
    SELECT t.run_id, t.scenario_id, t.variant, t.gold_intent, t.persona, t.perturbation, t.trials, ks.k,
           CASE WHEN t.trials >= ks.k
                THEN product(t.successes - f.i) / product(t.trials - f.i) END AS pass_k
    FROM task_trials t CROSS JOIN range(1, 5) ks(k) JOIN range(0, 4) f(i) ON f.i < ks.k
    GROUP BY t.run_id, t.scenario_id, t.variant, t.gold_intent, t.persona, t.perturbation, t.trials, ks.k
)
SELECT p.run_id, dims.dimension,
       CASE dims.dimension WHEN 'intent' THEN p.gold_intent WHEN 'persona' THEN p.persona
                           WHEN 'perturbation' THEN p.perturbation ELSE '*' END AS value,
       p.k, count(p.pass_k) AS tasks, avg(p.pass_k) AS pass_k, min(p.trials) AS trials
FROM per_task p CROSS JOIN (VALUES ('intent'), ('persona'), ('perturbation'), ('all')) dims(dimension)
GROUP BY ALL;

-- Brittleness of an intent under a perturbation: clean success minus perturbed success over its pairs
-- (gold_intent '*': the perturbation across intents). broke: the clean twin succeeded and the perturbed
-- dialogue failed; fixed: the reverse; brittleness = (broke - fixed) / pairs.
CREATE OR REPLACE VIEW brittleness AS
WITH counts AS (
    SELECT run_id, CASE WHEN grouping(gold_intent) = 1 THEN '*' ELSE gold_intent END AS gold_intent,
           perturbation, count(*) AS pairs,
           count(*) FILTER (WHERE clean_success) AS clean_successes,
           count(*) FILTER (WHERE perturbed_success) AS perturbed_successes,
           count(*) FILTER (WHERE clean_success AND NOT perturbed_success) AS broke,
           count(*) FILTER (WHERE perturbed_success AND NOT clean_success) AS fixed
    FROM pairs
    GROUP BY GROUPING SETS ((run_id, gold_intent, perturbation), (run_id, perturbation))
)
SELECT run_id, gold_intent, perturbation, pairs,
       clean_successes::DOUBLE / pairs AS clean_success_rate,
       perturbed_successes::DOUBLE / pairs AS perturbed_success_rate,
       (clean_successes - perturbed_successes)::DOUBLE / pairs AS brittleness,
       broke, fixed
FROM counts;
"""

_TURN_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("dialogue_id", pa.string()),
        ("turn_idx", pa.int32()),
        ("speaker", pa.string()),
        ("text", pa.string()),
        ("sim_time", pa.float64()),
        ("gold_intent", pa.string()),
        ("gold_acts", pa.list_(pa.string())),
        (
            "gold_slots",
            pa.list_(
                pa.struct(
                    [
                        ("slot", pa.string()),
                        ("value", pa.string()),
                        ("start", pa.int32()),
                        ("end", pa.int32()),
                    ]
                )
            ),
        ),
        ("part", pa.int32()),
        ("parts", pa.int32()),
        ("intent", pa.string()),
        ("slots", pa.map_(pa.string(), pa.string())),
        ("handoff", pa.bool_()),
        ("handoff_source", pa.string()),
        ("escalated_by", pa.string()),
        ("confidence", pa.float64()),
        ("raw", pa.string()),
        ("latency_ms", pa.float64()),
        ("error_type", pa.string()),
        ("intent_source", pa.string()),
        ("judged_by", pa.string()),
        ("user_fault", pa.string()),
    ]
)
_DIALOGUE_TYPES = {
    "idx": pa.int32(),
    "trial": pa.int32(),
    "intensity": pa.int32(),
    "success": pa.bool_(),
    "seed": pa.int64(),
    "critical": pa.bool_(),
    "gold_slots": pa.map_(pa.string(), pa.string()),
    "misrouted": pa.bool_(),
    "escalation_within": pa.int32(),
    "escalation_deadline": pa.int32(),
    "walk": pa.list_(pa.string()),
    "escalated": pa.bool_(),
    "escalation_turn": pa.int32(),
    "user_requested_human": pa.bool_(),
    "user_turns": pa.int32(),
    "assistant_turns": pa.int32(),
    "slot_errors": pa.int32(),
    "sim_seconds": pa.float64(),
    "llm_calls": pa.int32(),
    "llm_cached": pa.int32(),
    "llm_prompt_tokens": pa.int32(),
    "llm_completion_tokens": pa.int32(),
    "llm_cost_usd": pa.float64(),
}
_DIALOGUE_SCHEMA = pa.schema(
    [(name, _DIALOGUE_TYPES.get(name, pa.string())) for name in DialogueRecord.model_fields]
)
_EDIT_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("dialogue_id", pa.string()),
        ("turn_idx", pa.int32()),
        ("edit_idx", pa.int32()),
        ("perturbation", pa.string()),
        ("kind", pa.string()),
        ("start", pa.int32()),
        ("end", pa.int32()),
        ("before", pa.string()),
        ("after", pa.string()),
        ("intensity", pa.int32()),
    ]
)
_COVERAGE_SCHEMA = pa.schema(
    [(name, pa.string()) for name in ("run_id", "level", "intent", "complexity", "persona", "perturbation")]
    + [(name, pa.string()) for name in ("edge_kind", "edge_source", "edge_target")]
    + [("target", pa.float64()), ("planned", pa.int32()), ("dialogues", pa.int32()), ("filled", pa.bool_())]
)
_CHECK_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("dialogue_id", pa.string()),
        ("slot", pa.string()),
        ("expected", pa.string()),
        ("captured", pa.string()),
        ("captured_normalized", pa.string()),
        ("status", pa.string()),
    ]
)


class StoreError(BotdrillError):
    """The database file cannot be used (locked by another process, or from an incompatible version)."""

    code = "store_unusable"


def connect(path: str | Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the database, with an error that says what to do when another process holds it."""
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise StoreError(
                f"{path}: the database is in use by another botdrill or duckdb process; DuckDB allows one "
                "writer and no readers beside it. Wait for that run to finish, or use another --db."
            ) from None
        raise StoreError(f"{path}: cannot open the database: {exc}") from None
    except duckdb.Error as exc:
        raise StoreError(f"{path}: cannot open the database: {exc}") from None


class Store:
    """The single writer of a botdrill database.

    Example:
        >>> store = Store(":memory:")
        >>> store.con.execute("select max(version) from schema_version").fetchone()[0]
        5
    """

    def __init__(self, path: str | Path, *, flush_every: int = 500, flush_seconds: float = 1.0) -> None:
        self.path = str(path)
        self.con = connect(path)
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self._pending: list[tuple[DialogueRecord, list[TurnRecord], list[SlotCheck]]] = []
        self._last_flush = time.monotonic()
        self.written = 0
        try:
            self._migrate()
        except BaseException:
            self.con.close()  # a refused file must not stay locked by this process
            raise

    def _migrate(self) -> None:
        from . import __version__

        exists = self.con.execute(
            "select count(*) from information_schema.tables where table_name = 'schema_version'"
        ).fetchone()
        if exists and exists[0]:
            row = self.con.execute("select max(version) from schema_version").fetchone()
            found = row[0] if row else None
            for old, script in ((1, _FROM_V1), (2, _FROM_V2), (3, _FROM_V3), (4, _FROM_V4)):
                if found == old:
                    self.con.execute("BEGIN")
                    self.con.execute(script)
                    self.con.execute("COMMIT")
                    found = old + 1
            if found is not None and found != SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: schema version {found}, this botdrill writes version "
                    f"{SCHEMA_VERSION}; use a new --db file"
                )
        self.con.execute("BEGIN")
        self.con.execute(_TABLES)
        create_llm_table(self.con)
        self.con.execute(_VIEWS)
        row = self.con.execute("select count(*) from schema_version").fetchone()
        if not row or not row[0]:
            self.con.execute("insert into schema_version values (?, ?, now())", [SCHEMA_VERSION, __version__])
        self.con.execute("COMMIT")

    # -- runs -------------------------------------------------------------------------------------

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """The stored `runs` row for `run_id`, as a dict, or `None`."""
        cursor = self.con.execute("select * from runs where run_id = ?", [run_id])
        row = cursor.fetchone()
        if row is None:
            return None
        names = [d[0] for d in cursor.description]
        return dict(zip(names, row, strict=True))

    def start_run(self, run: dict[str, Any]) -> None:
        """Insert a new run, or mark an existing one as running again (a resume)."""
        if self.get_run(run["run_id"]) is None:
            self.con.execute(
                "insert into runs values ($run_id, now(), NULL, 'running', $pack, $pack_version, "
                "$pack_sha256, $target, $seed, $n_dialogues, $max_turns, $concurrency, $config, $versions)",
                {
                    **run,
                    "config": json.dumps(run["config"], sort_keys=True),
                    "versions": json.dumps(run["versions"], sort_keys=True),
                },
            )
        else:
            self.con.execute(
                "update runs set status = 'running', finished_at = NULL, n_dialogues = ? where run_id = ?",
                [run["n_dialogues"], run["run_id"]],
            )

    def end_run(self, run_id: str, status: str) -> None:
        """Mark a run `finished` or `interrupted`."""
        self.con.execute("update runs set status = ?, finished_at = now() where run_id = ?", [status, run_id])

    def finished_indexes(self, run_id: str) -> set[int]:
        """Indexes of the dialogues of `run_id` already stored (skipped on resume)."""
        rows = self.con.execute("select idx from dialogues where run_id = ?", [run_id]).fetchall()
        return {r[0] for r in rows}

    # -- dialogues --------------------------------------------------------------------------------

    def add(self, item: tuple[DialogueRecord, list[TurnRecord], list[SlotCheck]]) -> None:
        """Buffer a finished dialogue; write the buffer when it is big or old enough."""
        self._pending.append(item)
        if (
            len(self._pending) >= self.flush_every
            or time.monotonic() - self._last_flush >= self.flush_seconds
        ):
            self.flush()

    def flush(self) -> None:
        """Write every buffered dialogue in one transaction."""
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        dialogues = _dialogue_table([b[0] for b in batch])
        turns = _turn_table(batch)
        checks = _check_table(batch)
        edits = _edit_table(batch)
        self.con.execute("BEGIN")
        try:
            self.con.register("_bd_dialogues", dialogues)
            self.con.register("_bd_turns", turns)
            self.con.register("_bd_checks", checks)
            self.con.register("_bd_edits", edits)
            self.con.execute("insert into dialogues by name select * from _bd_dialogues")
            self.con.execute("insert into turns by name select * from _bd_turns")
            self.con.execute("insert into slot_checks by name select * from _bd_checks")
            self.con.execute("insert into edits by name select * from _bd_edits")
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        finally:
            for name in ("_bd_dialogues", "_bd_turns", "_bd_checks", "_bd_edits"):
                self.con.unregister(name)
        self.written += len(batch)
        self._last_flush = time.monotonic()

    def add_shrink(self, run_id: str, result: Any, minimal: Any) -> None:
        """Store a shrink result, and its minimal dialogue under the run `<run_id>:shrunk` (made on first
        use, a copy of the original run's row with status `shrunk`), replacing an earlier shrink of it."""
        shrunk_run = f"{run_id}:shrunk"
        self.con.execute("BEGIN")
        try:
            if minimal is not None:
                self.con.execute("delete from turns where dialogue_id = ?", [result.shrunk_dialogue_id])
                self.con.execute("delete from edits where dialogue_id = ?", [result.shrunk_dialogue_id])
                self.con.execute("delete from slot_checks where dialogue_id = ?", [result.shrunk_dialogue_id])
                self.con.execute("delete from dialogues where dialogue_id = ?", [result.shrunk_dialogue_id])
                self.con.execute(
                    "insert into runs select ?, now(), now(), 'shrunk', pack, pack_version, pack_sha256, "
                    "target, seed, 0, max_turns, concurrency, config, versions from runs r where run_id = ? "
                    "and not exists (select 1 from runs where run_id = ?)",
                    [shrunk_run, run_id, shrunk_run],
                )
            self.con.execute("delete from shrinks where dialogue_id = ?", [result.dialogue_id])
            self.con.execute(
                "insert into shrinks values (?, ?, ?, ?, ?, ?, ?, ?, ?, now())",
                [
                    run_id,
                    result.dialogue_id,
                    result.shrunk_dialogue_id,
                    result.outcome,
                    result.reproduced,
                    result.edits_before,
                    result.edits_after,
                    json.dumps([list(u) for u in result.kept]),
                    result.tests,
                ],
            )
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        if minimal is not None:
            self._pending.append(minimal)
            self.flush()
            self.con.execute(
                "update runs set n_dialogues = (select count(*) from dialogues where run_id = ?) "
                "where run_id = ?",
                [shrunk_run, shrunk_run],
            )

    def replace_coverage(self, run_id: str, rows: list[dict[str, Any]]) -> None:
        """Store a run's coverage rows in place of any earlier ones (a resumed run recomputes them)."""
        table = pa.Table.from_pylist(
            [{f.name: row.get(f.name) for f in _COVERAGE_SCHEMA} for row in rows], schema=_COVERAGE_SCHEMA
        )
        self._insert("coverage", table, delete=("run_id", run_id))

    def add_capacity(
        self, capacity_id: str, run_id: str | None, config: dict[str, Any], rows: list[dict[str, Any]]
    ) -> None:
        """Store one capacity simulation: a row per scope (all, critical, normal, intent:<name>)."""
        columns = [
            "scope", "contacts", "handed_off", "served", "abandoned", "unanswered", "abandonment_rate",
            "wait_mean_s", "wait_p50_s", "wait_p90_s", "wait_p99_s", "sla_breaches", "sla_breach_rate",
            "utilisation",
        ]  # fmt: skip
        table = pa.Table.from_pylist(
            [{"capacity_id": capacity_id, "run_id": run_id, "config": json.dumps(config, sort_keys=True)}
             | {c: row.get(c) for c in columns} for row in rows]
        )  # fmt: skip
        self._insert("capacity", table, extra=", now() as created_at")

    def _insert(
        self, name: str, table: pa.Table, *, delete: tuple[str, str] | None = None, extra: str = ""
    ) -> None:
        """Insert an Arrow table into table `name` by column name, in one transaction (after deleting
        the rows where `delete[0] = delete[1]`, when given)."""
        view = f"_bd_{name}"
        self.con.execute("BEGIN")
        try:
            if delete is not None:
                self.con.execute(f"delete from {name} where {delete[0]} = ?", [delete[1]])
            self.con.register(view, table)
            self.con.execute(f"insert into {name} by name select *{extra} from {view}")
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        finally:
            self.con.unregister(view)

    def close(self) -> None:
        """Flush and close."""
        try:
            self.flush()
        finally:
            self.con.close()


def _dialogue_table(records: Iterable[DialogueRecord]) -> pa.Table:
    cols: dict[str, list[Any]] = {f.name: [] for f in _DIALOGUE_SCHEMA}
    for record in records:
        for name, values in cols.items():
            values.append(getattr(record, name))
    cols["gold_slots"] = [list(slots.items()) for slots in cols["gold_slots"]]
    cols["outcome"] = [str(outcome) for outcome in cols["outcome"]]
    return pa.Table.from_pydict(cols, schema=_DIALOGUE_SCHEMA)


def _turn_table(batch: list[tuple[DialogueRecord, list[TurnRecord], list[SlotCheck]]]) -> pa.Table:
    cols: dict[str, list[Any]] = {f.name: [] for f in _TURN_SCHEMA}
    for record, turns, _ in batch:
        for t in turns:
            cols["run_id"].append(record.run_id)
            cols["dialogue_id"].append(record.dialogue_id)
            cols["turn_idx"].append(t.turn_idx)
            cols["speaker"].append(t.speaker)
            cols["text"].append(t.text)
            cols["sim_time"].append(t.sim_time)
            cols["gold_intent"].append(t.gold_intent)
            cols["gold_acts"].append(t.gold_acts)
            cols["gold_slots"].append(
                None
                if t.gold_slots is None
                else [
                    {"slot": s.slot, "value": s.value, "start": s.start, "end": s.end} for s in t.gold_slots
                ]
            )
            cols["part"].append(t.part)
            cols["parts"].append(t.parts)
            cols["intent"].append(t.intent)
            cols["slots"].append(None if t.slots is None else list(t.slots.items()))
            cols["handoff"].append(t.handoff)
            cols["handoff_source"].append(t.handoff_source)
            cols["escalated_by"].append(t.escalated_by)
            cols["confidence"].append(t.confidence)
            cols["raw"].append(t.raw)
            cols["latency_ms"].append(t.latency_ms)
            cols["error_type"].append(t.error_type)
            cols["intent_source"].append(t.intent_source)
            cols["judged_by"].append(t.judged_by)
            cols["user_fault"].append(t.user_fault)
    return pa.Table.from_pydict(cols, schema=_TURN_SCHEMA)


def _edit_table(batch: list[tuple[DialogueRecord, list[TurnRecord], list[SlotCheck]]]) -> pa.Table:
    cols: dict[str, list[Any]] = {f.name: [] for f in _EDIT_SCHEMA}
    for record, turns, _ in batch:
        for t in turns:
            for i, e in enumerate(t.edits or ()):
                cols["run_id"].append(record.run_id)
                cols["dialogue_id"].append(record.dialogue_id)
                cols["turn_idx"].append(t.turn_idx)
                cols["edit_idx"].append(i)
                cols["perturbation"].append(e.perturbation)
                cols["kind"].append(e.kind)
                cols["start"].append(e.start)
                cols["end"].append(e.end)
                cols["before"].append(e.before)
                cols["after"].append(e.after)
                cols["intensity"].append(e.intensity)
    return pa.Table.from_pydict(cols, schema=_EDIT_SCHEMA)


def _check_table(batch: list[tuple[DialogueRecord, list[TurnRecord], list[SlotCheck]]]) -> pa.Table:
    cols: dict[str, list[Any]] = {f.name: [] for f in _CHECK_SCHEMA}
    for record, _, checks in batch:
        for c in checks:
            cols["run_id"].append(record.run_id)
            cols["dialogue_id"].append(record.dialogue_id)
            for name in ("slot", "expected", "captured", "captured_normalized", "status"):
                cols[name].append(getattr(c, name))
    return pa.Table.from_pydict(cols, schema=_CHECK_SCHEMA)
