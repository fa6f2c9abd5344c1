"""The expansion methods that turn a few seed examples and a spec into annotated candidates."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
import yaml

from botdrill.agents._augment import (
    DEFAULT_FRAMES,
    WORDNET_DIR,
    AugmentError,
    Candidate,
    Expander,
    GenerationSpec,
    IntentEntry,
    Seed,
    _load_wordnet,
    load_seeds,
    load_spec,
    method_names,
    spec_from_pack,
    wordnet_available,
)
from botdrill.agents._types import GoldSlot
from botdrill.scenarios import Pack, load_pack
from botdrill.scenarios._models import SlotType

SPEC = GenerationSpec(
    name="cards",
    intents=[
        IntentEntry(
            name="report_fraud",
            description="The customer reports fraud on a card.",
            templates=[
                "I need to report fraud on my {card_type}",
                "someone used my {card_type} card for {amount} without asking",
                "Can I report a fraudulent payment of {amount}?",
            ],
        ),
        IntentEntry(
            name="freeze_card",
            description="The customer wants a card frozen for a while.",
            templates=["can you freeze my {card_type} card", "Please block my card for now"],
            target=False,
        ),
        IntentEntry(
            name="check_balance",
            description="The customer asks for the balance.",
            templates=["what's my balance", "how much money is on my account"],
            target=False,
        ),
    ],
    slots={"card_type": ["visa", "amex", "american express", "mastercard"], "amount": ["£20", "50 pounds"]},
    synonyms=[["card", "debit card"], ["fraud", "scam"]],
)
SEEDS = [
    Seed("can you report fraud on my visa", "report_fraud", "seeds.csv:2"),
    Seed("Somebody took 50 pounds off my american express", "report_fraud", "seeds.csv:3"),
    Seed("How do I freeze my amex card?", "freeze_card", "seeds.csv:4"),
]
PARAPHRASES = {"seeds.csv:2": ["i want to report a scam on my visa", "there's fraud on my mastercard"]}
SOURCES = ["pack", "seed_templates", "llm_paraphrase"]


def _expander(
    methods: list[str], *, seed: int = 0, transform_rate: float = 0.5, wordnet_dir: Path = WORDNET_DIR
) -> Expander:
    return Expander(
        SPEC,
        SEEDS,
        methods,
        seed=seed,
        transform_rate=transform_rate,
        paraphrases=PARAPHRASES,
        wordnet_dir=wordnet_dir,
    )


def _texts_and_slots(c: Candidate) -> Iterator[tuple[str, tuple[GoldSlot, ...]]]:
    yield c.text, c.slots
    for turn in c.turns:
        yield turn.text, turn.slots


def _assert_spans(c: Candidate) -> None:
    for text, slots in _texts_and_slots(c):
        for s in slots:
            assert text[s.start : s.end] == s.value, (c.method, text, s)


def _batch(e: Expander, intent: str) -> list[Candidate]:
    return e.candidates(intent, 30) + e.dialogues(intent, 6) + e.negatives(intent, 6)


# -- determinism ------------------------------------------------------------------------------------------


def test_same_inputs_give_the_same_candidates_and_asking_for_more_extends() -> None:
    methods = [*SOURCES, "lexical", "perturb:typo", "perturb:filler"]
    a, b = _expander(methods, seed=7), _expander(methods, seed=7)
    first = a.candidates("report_fraud", 20)
    assert first == b.candidates("report_fraud", 20)
    assert b.candidates("report_fraud", 45)[:20] == first
    assert a.dialogues("report_fraud", 5) == b.dialogues("report_fraud", 5)
    assert a.negatives("report_fraud", 5) == b.negatives("report_fraud", 5)
    other = _expander(methods, seed=8).candidates("report_fraud", 20)
    assert [c.text for c in other] != [c.text for c in first]


def test_frames_are_in_a_fixed_order_whatever_the_hash_seed() -> None:
    # Candidates draw frames from this list: a set's order (which changes between runs) would change them.
    frames = _expander(["pack"])._frames
    assert frames == sorted({f.casefold() for f in DEFAULT_FRAMES}, key=lambda f: (-len(f), f))


# -- gold spans -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", [m for m in method_names() if m not in SOURCES and m != "wordnet"])
def test_every_gold_span_points_at_its_value_after_every_method(method: str) -> None:
    e = _expander([*SOURCES, method], transform_rate=1.0)
    changed = 0
    for intent in ("report_fraud", "freeze_card", "check_balance"):
        for c in _batch(e, intent):
            _assert_spans(c)
            changed += method in c.method
    if method in ("lexical", "perturb:typo", "perturb:filler", "perturb:casing"):
        assert changed, f"{method} never changed a candidate"


def test_spans_stay_valid_through_a_chain_of_every_method() -> None:
    transforms = [m for m in method_names() if m not in SOURCES and m != "wordnet"]
    e = _expander([*SOURCES, *transforms], transform_rate=0.6, seed=3)
    for intent in ("report_fraud", "freeze_card"):
        batch = _batch(e, intent)
        assert batch
        for c in batch:
            _assert_spans(c)
            assert c.method.split(">")[0].removesuffix("+dialogue") in SOURCES


# -- sources ----------------------------------------------------------------------------------------------


def test_seed_templates_turns_slot_values_into_placeholders_and_swaps_the_frame() -> None:
    e = _expander(["seed_templates"])
    patterns = {p.origin: p for p in e.patterns("report_fraud", "seed_templates")}
    fraud = patterns["seed:seeds.csv:2"]
    assert (fraud.frame, fraud.body) == ("can you", "report fraud on my {card_type}")
    # the longest value wins: "american express" is one placeholder, not "american {card_type}"
    assert patterns["seed:seeds.csv:3"].body == "Somebody took {amount} off my {card_type}"

    made = [c for c in e.candidates("report_fraud", 60) if c.origin == "seed:seeds.csv:2"]
    assert made and all(c.method == "seed_templates" for c in made)
    for c in made:
        _assert_spans(c)
        assert c.text.endswith(f"report fraud on my {c.slots[0].value}")
    assert {c.slots[0].value for c in made} - {"visa"}, "the value is never refilled"
    frames = {c.text.removesuffix(f" report fraud on my {c.slots[0].value}") for c in made}
    assert frames - {"can you"}, "the frame is never swapped"
    assert frames <= {f.casefold() for f in DEFAULT_FRAMES}


def test_a_swapped_frame_keeps_the_capital_and_the_question_mark_follows_it() -> None:
    e = _expander(["pack"])
    made = [c for c in e.candidates("report_fraud", 60) if c.origin == "template:report_fraud#2"]
    assert len({c.text.split(" report")[0] for c in made}) > 1
    for c in made:
        assert c.text[0].isupper()
        asks = c.text.split()[0] in ("Can", "Could", "How", "Is")
        assert c.text.endswith("?" if asks else "."), c.text


def test_llm_paraphrase_uses_the_paraphrases_of_the_intents_seeds() -> None:
    made = _expander(["llm_paraphrase"]).candidates("report_fraud", 10)
    assert {c.origin for c in made} == {"paraphrase:seeds.csv:2#0", "paraphrase:seeds.csv:2#1"}
    assert all(c.method == "llm_paraphrase" for c in made)
    assert _expander(["llm_paraphrase"]).candidates("check_balance", 10) == []


# -- transforms -------------------------------------------------------------------------------------------


def test_lexical_swaps_a_synonym() -> None:
    made = _expander(["pack", "lexical"], transform_rate=1.0).candidates("freeze_card", 20)
    swapped = [c for c in made if c.method == "pack>lexical"]
    assert swapped
    for c in swapped:
        (edit,) = c.edits
        assert (edit.perturbation, edit.kind) == ("lexical", "synonym")
        assert {edit.before.casefold(), edit.after.casefold()} in ({"card", "debit card"}, {"fraud", "scam"})
        assert c.text[edit.start : edit.end] == edit.after
    assert any("debit card" in c.text for c in swapped)


def test_lexical_offsets_hold_when_case_folding_changes_a_texts_length() -> None:
    # "ß".casefold() is "ss": offsets found in a case-folded copy would land one character off.
    spec = GenerationSpec(
        name="cards",
        intents=[
            IntentEntry(name="freeze_card", description="Freeze.", templates=["Straße {c}: freeze my card"])
        ],
        slots={"c": ["visa"]},
        synonyms=[["card", "debit card"]],
    )
    made = Expander(spec, [], ["pack", "lexical"], transform_rate=1.0).candidates("freeze_card", 3)
    assert {c.text for c in made} == {"Straße visa: freeze my debit card"}
    for c in made:
        _assert_spans(c)


def test_lexical_never_substitutes_inside_a_slot_value() -> None:
    spec = GenerationSpec(
        name="cards",
        intents=[
            IntentEntry(name="freeze_card", description="Freeze a card.", templates=["freeze my {product}"])
        ],
        slots={"product": ["gold card", "card plus"]},
        synonyms=[["card", "debit card"]],
    )
    e = Expander(spec, [], ["pack", "lexical"], transform_rate=1.0)
    made = e.candidates("freeze_card", 20)
    assert made
    for c in made:
        _assert_spans(c)
        assert c.method == "pack"  # the only "card" is inside the slot value
        assert "debit" not in c.text


def test_typo_perturbation_records_its_edits() -> None:
    made = _expander(["pack", "perturb:typo"], transform_rate=1.0).candidates("report_fraud", 20)
    typoed = [c for c in made if c.method == "pack>perturb:typo"]
    assert typoed
    for c in typoed:
        assert c.edits and all(e.perturbation == "typo" for e in c.edits)
        for e in c.edits:
            assert c.text[e.start : e.end] == e.after
            assert e.before != e.after
        _assert_spans(c)


def test_transform_rate_zero_leaves_every_text_as_the_source_made_it() -> None:
    made = _expander(["pack", "lexical", "perturb:typo"], transform_rate=0.0).candidates("report_fraud", 20)
    assert all(c.method == "pack" and not c.edits for c in made)


# -- errors -----------------------------------------------------------------------------------------------


def test_an_unknown_method_names_the_known_ones() -> None:
    with pytest.raises(AugmentError, match=r"unknown method perturb:nope; known: pack, .*--list-methods"):
        _expander(["pack", "perturb:nope"])


def test_methods_without_a_source_say_which_to_add() -> None:
    with pytest.raises(AugmentError, match="no source among the methods: name at least one of pack"):
        _expander(["lexical", "perturb:typo"])


def test_wordnet_without_its_files_says_what_to_install(tmp_path: Path) -> None:
    assert not wordnet_available(tmp_path)
    with pytest.raises(AugmentError) as info:
        _expander(["pack", "wordnet"], wordnet_dir=tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message
    assert "wordnet-base" in message and "leave the method out" in message


# -- WordNet ----------------------------------------------------------------------------------------------


def _write_wordnet(folder: Path) -> None:
    """A tiny WordNet in the Princeton file format: data files addressed by byte offsets, index files
    listing each word's senses most frequent first, and a count list."""
    header = "  1 This software and database is being provided to you, the LICENSEE, by\n"
    synsets = {
        # the verb's rarer sense comes first in the data file, so file order is not frequency order
        "verb": [("chill", ["freeze", "ice"]), ("stop", ["freeze", "suspend", "block"])],
        "noun": [("cold", ["freeze", "frost"]), ("plastic", ["card", "board"])],
        "adj": [("quick", ["fast(a)", "speedy"])],
    }
    offsets: dict[str, dict[str, int]] = {}
    for name, entries in synsets.items():
        text = header
        offsets[name] = {}
        for key, words in entries:
            offset = len(text.encode())
            offsets[name][key] = offset
            listed = " ".join(f"{w} 0" for w in words)
            text += f"{offset:08d} 29 {name[0]} {len(words):02x} {listed} 000 | {key}  \n"
        (folder / f"data.{name}").write_text(text)
    index = {
        "verb": [
            ("block", ["stop"]),
            ("freeze", ["stop", "chill"]),
            ("ice", ["chill"]),
            ("suspend", ["stop"]),
        ],
        "noun": [("board", ["plastic"]), ("card", ["plastic"]), ("freeze", ["cold"]), ("frost", ["cold"])],
        "adj": [("fast", ["quick"]), ("speedy", ["quick"])],
    }
    for name, lemmas in index.items():
        lines = [header]
        for lemma, senses in lemmas:
            offs = " ".join(f"{offsets[name][s]:08d}" for s in senses)
            lines.append(f"{lemma} {name[0]} {len(senses)} 0 {len(senses)} {len(senses)} {offs}  \n")
        (folder / f"index.{name}").write_text("".join(lines))
    (folder / "cntlist.rev").write_text("freeze%1:19:00:: 1 2\nfreeze%2:30:00:: 1 9\n")
    (folder / "verb.exc").write_text("froze freeze\n")


def test_wordnet_reads_the_most_frequent_sense_of_the_most_common_part_of_speech(tmp_path: Path) -> None:
    _write_wordnet(tmp_path)
    assert wordnet_available(tmp_path)
    wordnet = _load_wordnet(str(tmp_path))
    assert wordnet.synonyms("freeze") == ["suspend", "block"]  # a verb more often than a noun; first sense
    assert wordnet.synonyms("freeze", "na") == ["frost"]  # after "my": a noun
    assert wordnet.synonyms("card") == ["board"]
    assert wordnet.synonyms("fast") == ["speedy"]  # the "(a)" marker is no part of the word
    assert wordnet.synonyms("froze") == [] and wordnet.synonyms("unknown") == []


def test_wordnet_method_swaps_a_word_for_its_synonym(tmp_path: Path) -> None:
    _write_wordnet(tmp_path)
    spec = GenerationSpec(
        name="cards",
        intents=[IntentEntry(name="freeze_card", description="Freeze.", templates=["freeze my {c} card"])],
        slots={"c": ["visa"]},
    )
    made = Expander(spec, [], ["pack", "wordnet"], transform_rate=1.0, wordnet_dir=tmp_path).candidates(
        "freeze_card", 10
    )
    assert {c.text for c in made} == {"suspend my visa card", "block my visa card", "freeze my visa board"}
    assert all(c.method == "pack>wordnet" and c.edits[0].kind == "synonym" for c in made)
    for c in made:
        _assert_spans(c)


@pytest.mark.skipif(
    not wordnet_available(),
    reason=f"Debian's wordnet-base is not installed (no WordNet files in {WORDNET_DIR})",
)
def test_wordnet_method_with_the_installed_wordnet() -> None:
    wordnet = _load_wordnet(str(WORDNET_DIR))
    assert {"alter", "modify"} <= set(wordnet.synonyms("change", "v"))
    assert "assist" in wordnet.synonyms("help", "v")
    assert "board" not in wordnet.synonyms("card")  # a bank card, not a circuit board
    assert wordnet.synonyms("lost") == []  # the verb's past, not the adjective
    e = _expander(["pack", "seed_templates", "wordnet"], transform_rate=1.0)
    swapped = [c for c in e.candidates("report_fraud", 30) if "wordnet" in c.method]
    assert swapped
    for c in swapped:
        _assert_spans(c)
        assert any(ed.perturbation == "wordnet" and ed.kind == "synonym" for ed in c.edits)


# -- specs ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def banking() -> Pack:
    return load_pack("banking")


def _builtin_pack_file() -> Path:
    return Path(str(resources.files("botdrill.scenarios") / "packs" / "banking.yaml"))


def test_spec_from_pack_has_every_intent_critical_ones_as_targets_and_slot_values(banking: Pack) -> None:
    spec = spec_from_pack(banking)
    assert spec.name == banking.name
    assert [i.name for i in spec.intents] == [i.name for i in banking.intents]
    for entry, intent in zip(spec.intents, banking.intents, strict=True):
        assert entry.target == intent.critical
        assert entry.templates == [*intent.openings, *intent.restatements]
    assert any(i.target for i in spec.intents) and not all(i.target for i in spec.intents)
    assert set(spec.slots) == {s.name for s in banking.slots}
    for slot in banking.slots:
        values = spec.slots[slot.name]
        assert values and len(values) == len(set(values))
        if slot.type is SlotType.CHOICE:
            assert values == list(slot.values)
    assert spec_from_pack(banking).digest() == spec.digest()


def test_load_spec_reads_an_intent_list(tmp_path: Path) -> None:
    file = tmp_path / "intents.yaml"
    file.write_text(yaml.safe_dump(SPEC.model_dump(), sort_keys=False), encoding="utf-8")
    assert load_spec(file) == SPEC


def test_load_spec_reads_a_pack_in_yaml_or_json(tmp_path: Path, banking: Pack) -> None:
    expected = spec_from_pack(banking).digest()
    assert load_spec(_builtin_pack_file()).digest() == expected
    data = yaml.safe_load(_builtin_pack_file().read_text(encoding="utf-8"))
    as_json = tmp_path / "banking.json"
    as_json.write_text(json.dumps(data, default=str, indent=1), encoding="utf-8")  # '"personas":' keys
    assert load_spec(as_json).digest() == expected


def _spec_error(tmp_path: Path, text: str) -> AugmentError:
    file = tmp_path / "intents.yaml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(AugmentError) as info:
        load_spec(file)
    assert str(info.value).startswith(f"{file}:")
    assert info.value.code == "augment_input"
    return info.value


def test_an_unknown_slot_in_a_template_names_file_line_and_field(tmp_path: Path) -> None:
    exc = _spec_error(
        tmp_path,
        "name: cards\n"
        "slots:\n"
        "  card_type: [visa, amex]\n"
        "intents:\n"
        "  - name: report_fraud\n"
        "    description: Report fraud.\n"
        "    templates:\n"
        "      - I need to report fraud on my {card_type}\n"
        "      - someone took {amount} from me\n",
    )
    assert str(exc).startswith(f"{tmp_path / 'intents.yaml'}:9: intents.0.templates.1: ")
    assert "{amount}" in str(exc) and "card_type" in str(exc)


def test_intent_list_errors_point_at_their_line(tmp_path: Path) -> None:
    twice = "name: cards\nintents:\n  - name: a\n    description: x\n  - name: a\n    description: y\n"
    exc = _spec_error(tmp_path, twice)
    assert (exc.line, exc.field) == (5, "intents.1.name")
    missing = "name: cards\nintents:\n  - name: a\n    descr: x\n"
    exc = _spec_error(tmp_path, missing)
    assert (exc.line, exc.field) == (3, "intents.0.description")
    no_values = "name: cards\nslots:\n  card_type: []\nintents:\n  - name: a\n    description: x\n"
    exc = _spec_error(tmp_path, no_values)
    assert (exc.line, exc.field) == (3, "slots.card_type")
    assert _spec_error(tmp_path, "name: [\n").line == 2
    with pytest.raises(AugmentError, match="no such file"):
        load_spec(tmp_path / "absent.yaml")


# -- seeds ------------------------------------------------------------------------------------------------


def test_load_seeds_reads_csv_and_jsonl(tmp_path: Path) -> None:
    csv_file = tmp_path / "seeds.csv"
    csv_file.write_text(
        'Text,Intent\n"can you  report fraud, please",report_fraud\n'
        "\n"
        "how do i freeze my card, freeze_card \n",
        encoding="utf-8",
    )
    assert load_seeds(csv_file, intents=["report_fraud", "freeze_card"]) == [
        Seed("can you report fraud, please", "report_fraud", "seeds.csv:2"),
        Seed("how do i freeze my card", "freeze_card", "seeds.csv:4"),  # the blank line counts
    ]
    jsonl = tmp_path / "seeds.jsonl"
    jsonl.write_text(
        '{"text": "someone used my card", "intent": "report_fraud"}\n'
        "\n"
        '{"text": "block it", "intent": "freeze_card"}\n',
        encoding="utf-8",
    )
    assert load_seeds(jsonl) == [
        Seed("someone used my card", "report_fraud", "seeds.jsonl:1"),
        Seed("block it", "freeze_card", "seeds.jsonl:3"),
    ]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("s.csv", "text,label\nhello,x\n", r"s\.csv line 1: missing column intent"),
        ("s.csv", "text,intent\nhello,report_fraud\n ,report_fraud\n", r"s\.csv line 3, field text: empty"),
        ("s.csv", "text,intent\nhello,report_fraud\nhi\n", r"s\.csv line 3, field intent: empty or missing"),
        (
            "s.csv",
            "text,intent\nhello,report_frad\n",
            r"s\.csv line 2, field intent: 'report_frad' is not an intent",
        ),
        ("s.jsonl", '{"text": "a", "intent": "report_fraud"}\n{"text": "b",\n', r"s\.jsonl line 2: not JSON"),
        ("s.jsonl", '["a", "report_fraud"]\n', r"s\.jsonl line 1: expected an object with text and intent"),
        ("s.jsonl", '{"text": 3, "intent": "report_fraud"}\n', r"s\.jsonl line 1, field text: must be text"),
        ("s.csv", "text,intent\n", r"s\.csv: no seed examples"),
    ],
)
def test_seed_file_errors_name_file_and_line(tmp_path: Path, name: str, content: str, message: str) -> None:
    file = tmp_path / name
    file.write_text(content, encoding="utf-8")
    with pytest.raises(AugmentError, match=message):
        load_seeds(file, intents=["report_fraud", "freeze_card"])


def test_a_missing_seed_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(AugmentError, match=r"absent\.csv: no such file"):
        load_seeds(tmp_path / "absent.csv")


# -- negatives and dialogues ------------------------------------------------------------------------------


def test_negatives_are_other_intents_texts_labelled_as_themselves() -> None:
    e = _expander(["pack", "seed_templates", "perturb:typo"])
    negatives = e.negatives("report_fraud", 8)
    assert 0 < len(negatives) <= 8
    assert len({c.text.casefold() for c in negatives}) == len(negatives)
    for c in negatives:
        assert c.kind == "negative"
        assert c.intent in {"freeze_card", "check_balance"}
        assert c.meta["near"] == "report_fraud"
        _assert_spans(c)
    # the nearest come first: they share "card" (or "my") with the target's words
    assert negatives[0].intent == "freeze_card"


def test_dialogues_alternate_and_end_with_the_assistant() -> None:
    e = _expander([*SOURCES, "perturb:typo"], seed=5)
    dialogues = e.dialogues("report_fraud", 12)
    assert len(dialogues) == 12
    for d in dialogues:
        speakers = [t.speaker for t in d.turns]
        assert speakers == ["user", "assistant", "user", "assistant"]
        assert d.kind == "dialogue" and d.method.endswith("+dialogue")
        assert d.text == d.turns[0].text and d.user_text == f"{d.turns[0].text} {d.turns[2].text}"
        assert all(t.intent == "report_fraud" for t in d.turns if t.speaker == "user")
        assert all(t.intent is None for t in d.turns if t.speaker == "assistant")
        assert d.turns[-1].acts == ("confirm",)
        _assert_spans(d)
    escalated = e.dialogues("report_fraud", 4, escalate=True)
    assert all(d.turns[-1].acts == ("handoff",) for d in escalated)
    closes = {d.turns[-1].text for d in dialogues}
    assert not closes & {d.turns[-1].text for d in escalated}


def test_the_second_user_message_comes_from_the_first_ones_source() -> None:
    spec = GenerationSpec(
        name="cards",
        intents=[
            IntentEntry(
                name="report_fraud",
                description="Report fraud.",
                templates=["there is fraud on my {card_type}", "my {card_type} has fraud on it"],
            )
        ],
        slots={"card_type": ["visa", "amex"]},
    )
    seeds = [
        Seed("someone stole money from me", "report_fraud", "s:1"),
        Seed("a thief took my cash", "report_fraud", "s:2"),
    ]
    for d in Expander(spec, seeds, ["pack", "seed_templates"]).dialogues("report_fraud", 10):
        first, again = d.turns[0].text, d.turns[2].text
        from_pack = d.method.startswith("pack")
        assert ("fraud" in first) == from_pack
        assert ("fraud" in again) == from_pack
        assert again != first


def test_dialogues_never_crash_when_a_source_has_little_or_nothing() -> None:
    spec = GenerationSpec(
        name="cards",
        intents=[
            IntentEntry(name="one", description="One way to say it.", templates=["freeze my {c} card"]),
            IntentEntry(name="none", description="Nothing to say it with."),
        ],
        slots={"c": ["visa", "amex"]},
    )
    e = Expander(spec, [], ["llm_paraphrase", "seed_templates", "pack"])
    single = e.dialogues("one", 5)
    assert len(single) == 5
    for d in single:
        assert d.turns[2].text.startswith("freeze my") and d.turns[2].intent == "one"
        _assert_spans(d)
    assert e.dialogues("none", 5) == [] and e.candidates("none", 5) == []
    assert e.negatives("one", 3) == []


def test_load_spec_takes_a_built_in_pack_by_name() -> None:
    from botdrill.agents._augment import load_spec as load

    spec = load("banking")
    assert "report_fraud" in [i.name for i in spec.intents]
    assert spec.intent("report_fraud").target
