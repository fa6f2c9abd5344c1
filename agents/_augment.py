"""Training utterances and short dialogues for rare intents, expanded from a handful of real examples.

A data team has five real examples of the intents that matter most. The expansion methods here turn those
seeds, plus what a pack (or a bare intent list) says about each intent, into many annotated candidates;
the quality gates in `botdrill.analysis` then decide which are kept. Every method is named, and the
chain of methods that made a candidate is recorded on it (`pack>lexical>perturb:typo`), so a batch can
say which methods pay.

Methods:

- `pack`: the intent's templates (a pack's openings and restatements, or an intent list's `templates`),
  with `{slot}` placeholders filled from the slot values and the gold spans recorded.
- `seed_templates`: each seed turned into a pattern: slot values the spec knows become placeholders and
  are refilled with other values, and a leading request frame ("can you", "i need to", "how do i") is
  swapped for another, so "can you report fraud on my visa" also yields "i need to report fraud on my
  amex".
- `lexical`: a word or phrase swapped for another of its synonym group (the spec's domain lexicon).
- `wordnet`: a content word swapped for a WordNet synonym of its most frequent sense (as a noun after
  "my" or "the", as a verb after "to" or "i", else in its most frequent part of speech), when Debian's
  `wordnet-base` is installed (`/usr/share/wordnet`); otherwise the method is unavailable and says so.
- `perturb:<name>`: any text perturbation of the simulator's library (`typo`, `casing`, `filler`,
  `chatspeak`, ...), which keeps gold spans valid.
- `llm_paraphrase`: a seed paraphrased by an LLM (see `LLMParaphraser`), recorded and replayed through
  the run store like every other LLM call.

Sources (`pack`, `seed_templates`, `llm_paraphrase`) make a base text; transforms (`lexical`, `wordnet`,
`perturb:*`) then edit some of them. Everything is drawn from random streams keyed by the seed, the
intent and the candidate's index: the same inputs give the same candidates, and asking for more
candidates does not change the first ones.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from botdrill.scenarios import BotdrillError, Pack
from botdrill.scenarios._loader import _LOCATED, _dotted, _line_for, compose_mapping
from botdrill.scenarios._models import SlotType, located
from botdrill.scenarios._values import generate_value, render_value

from ._http_adapters import AdapterConfigError, read_config
from ._perturb import Edit, NoiseContext, Utterance, get_perturbation, perturbations
from ._types import GoldSlot

__all__ = [
    "AugmentError",
    "Candidate",
    "DialogueTurn",
    "Expander",
    "GenerationSpec",
    "IntentEntry",
    "Seed",
    "load_seeds",
    "load_spec",
    "method_names",
    "spec_from_pack",
]

Kind = Literal["utterance", "dialogue", "negative"]

SOURCES = ("pack", "seed_templates", "llm_paraphrase")
TRANSFORMS = ("lexical", "wordnet")
WORDNET_DIR = Path("/usr/share/wordnet")

_PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")
_WORD = re.compile(r"[a-z0-9']+")

# Leading request frames that take a bare verb phrase: one can stand in for another ("can you freeze my
# account" / "i need to freeze my account"). Longest first, so "could you please" wins over "could you".
DEFAULT_FRAMES = (
    "could you please",
    "can you please",
    "i would like to",
    "i need you to",
    "is it possible to",
    "i'd like to",
    "how do i",
    "how can i",
    "i want to",
    "i need to",
    "i have to",
    "can you",
    "could you",
    "help me",
    "can i",
    "please",
    "i wanna",
    "let me",
)


class AugmentError(BotdrillError):
    """An intent list or a seed file cannot be used; the message names the file, the line and the field."""

    code = "augment_input"


class _SpecError(AdapterConfigError, AugmentError):
    """An intent list that cannot be used: an `AugmentError` with the path, line and field attributes of the
    config readers' errors, so that `read_config` can raise it."""

    code = AugmentError.code
    unnamed = "<intent list>"


# -- inputs ---------------------------------------------------------------------------------------------


class IntentEntry(BaseModel):
    """One intent to generate for, as a bare intent list describes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = Field(min_length=1)
    """What the customer wants; shown to an LLM paraphraser and on rating sheets."""
    templates: list[str] = Field(default_factory=list)
    """Ways to say it, with `{slot}` placeholders; the `pack` method fills them."""
    target: bool = True
    """Whether a batch generates for it; other intents are there to be told apart (negatives)."""


class GenerationSpec(BaseModel):
    """What a batch may draw on besides the seeds: intents, slot values, a domain lexicon, frames."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    intents: list[IntentEntry] = Field(min_length=1)
    slots: dict[str, list[str]] = Field(default_factory=dict)
    """Slot name -> surface values ("visa", "american express"); a value in a seed becomes a placeholder."""
    synonyms: list[list[str]] = Field(default_factory=list)
    """Groups of interchangeable words or phrases, for the `lexical` method."""
    frames: list[str] = Field(default_factory=lambda: list(DEFAULT_FRAMES))
    """Leading request frames that take a verb phrase, for `seed_templates`."""

    # Cross-field checks name their field with `located` ("@intents.2.templates.0: ..."), which `load_spec`
    # turns into the line of that field.

    @field_validator("slots")
    @classmethod
    def _slot_values(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, values in value.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
                raise located(
                    "slots", f"slot name {name!r} must be lowercase letters, digits and underscores"
                )
            if not values:
                raise located(f"slots.{name}", f"slot {name!r} has no values")
            for i, v in enumerate(values):
                if not v.strip():
                    raise located(f"slots.{name}.{i}", f"slot {name!r} has an empty value")
        return value

    @field_validator("synonyms")
    @classmethod
    def _groups(cls, value: list[list[str]]) -> list[list[str]]:
        for i, group in enumerate(value):
            if len(group) < 2:
                raise located(f"synonyms.{i}", "a synonym group needs at least two members")
            for j, word in enumerate(group):
                if not word.strip():
                    raise located(f"synonyms.{i}.{j}", "an empty synonym")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> GenerationSpec:
        seen: set[str] = set()
        for i, intent in enumerate(self.intents):
            if intent.name in seen:
                raise located(f"intents.{i}.name", f"intent {intent.name!r} is listed twice")
            seen.add(intent.name)
        for i, intent in enumerate(self.intents):
            for j, template in enumerate(intent.templates):
                unknown = sorted({s for s in _PLACEHOLDER.findall(template) if s not in self.slots})
                if unknown:
                    known = ", ".join(self.slots) or "none"
                    raise located(
                        f"intents.{i}.templates.{j}",
                        f"template {template!r} uses {', '.join('{' + u + '}' for u in unknown)}, which is "
                        f"not among the spec's slots (slots: {known})",
                    )
        return self

    def intent(self, name: str) -> IntentEntry:
        """The entry called `name` (KeyError names the known ones)."""
        for entry in self.intents:
            if entry.name == name:
                return entry
        raise KeyError(f"unknown intent {name!r}; the spec has {', '.join(i.name for i in self.intents)}")

    def digest(self) -> str:
        """SHA-256 of the spec's canonical JSON: part of a batch's config hash."""
        return hashlib.sha256(json.dumps(self.model_dump(), sort_keys=True).encode()).hexdigest()


def spec_from_pack(pack: Pack, *, values_per_slot: int = 24) -> GenerationSpec:
    """A pack seen as a generation spec: its openings and restatements are templates, its slots values.

    Slots that are drawn rather than listed (amounts, dates, card endings) get `values_per_slot` rendered
    values from a stream keyed by the slot's name, so the spec is the same every time.
    """
    slots: dict[str, list[str]] = {}
    for slot in pack.slots:
        if slot.type is SlotType.CHOICE and slot.values:
            slots[slot.name] = list(slot.values)
            continue
        rng = _rng("pack-slot", pack.name, slot.name)
        seen: list[str] = []
        for _ in range(values_per_slot * 3):
            surface = render_value(slot, generate_value(slot, pack, rng), pack, rng)
            if surface not in seen:
                seen.append(surface)
            if len(seen) == values_per_slot:
                break
        slots[slot.name] = seen
    intents = [
        IntentEntry(
            name=i.name,
            description=i.description,
            templates=[*i.openings, *i.restatements],
            target=i.critical,
        )
        for i in pack.intents
    ]
    return GenerationSpec(name=pack.name, intents=intents, slots=slots)


def load_spec(path: str | Path) -> GenerationSpec:
    """A generation spec from a YAML (or JSON) file: a scenario pack (a mapping with `personas`) or a bare
    intent list; or from a built-in pack by name (`banking`), as `load_pack` takes one.

    Raises:
        AugmentError: the file is missing or invalid; the message names the file, line and field.
        BotdrillError: a pack that does not validate (the pack loader's own error).
    """
    from botdrill.scenarios import builtin_packs, load_pack

    file = Path(path).expanduser()
    if not file.exists() and str(path) in builtin_packs():
        return spec_from_pack(load_pack(str(path)))
    if _is_pack(file):
        return spec_from_pack(load_pack(file))
    try:
        spec, _ = read_config(path, GenerationSpec, what="an intent list", error=_SpecError)
    except _SpecError as exc:
        raise _relocated(exc, file) from None
    return spec


def _is_pack(file: Path) -> bool:
    """Whether `file` holds a scenario pack: a mapping with a `personas` key (an intent list has none)."""
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False  # not a readable pack: the intent-list reader says what is wrong
    return isinstance(data, dict) and "personas" in data


def _relocated(exc: _SpecError, file: Path) -> _SpecError:
    """`exc` pointing at the field that a cross-field check names (`@intents.2.templates.0: ...`), if any."""
    found = _LOCATED.match(exc.reason)
    if found is None:
        return exc
    loc = tuple(int(p) if p.isdigit() else p for p in found.group(1).split("."))
    source = exc.path or str(file)
    _, lines = compose_mapping(file.read_text(encoding="utf-8"), source=source, error=_SpecError, what="")
    return _SpecError(found.group(2), path=source, line=_line_for(loc, lines), field=_dotted(loc))


@dataclass(frozen=True)
class Seed:
    """A real example the team already has: the only real text of a rare intent the generator sees."""

    text: str
    intent: str
    source: str
    """`file:line`, so a generated example can be traced to the seed it came from."""


def load_seeds(path: str | Path, *, intents: Sequence[str] | None = None) -> list[Seed]:
    """Seed examples from CSV (a header with `text` and `intent`) or JSONL (`{"text":..., "intent":...}`).

    Args:
        intents: when given, an intent outside it is an error (a typo in a label would otherwise quietly
            start a new intent).

    Raises:
        AugmentError: missing file, missing column, empty text or unknown intent, with file and line.
    """
    file = Path(path)
    name = file.name
    if not file.is_file():
        raise AugmentError(f"{name}: no such file")
    try:
        raw = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AugmentError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    rows: list[tuple[int, Mapping[str, Any]]] = []
    if file.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        for n, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise AugmentError(f"{name} line {n}: not JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise AugmentError(f"{name} line {n}: expected an object with text and intent")
            rows.append((n, obj))
    else:
        reader = csv.DictReader(io.StringIO(raw, newline=""))
        try:
            header = reader.fieldnames or []
            reader.fieldnames = [h.strip().casefold() for h in header]
            missing = [c for c in ("text", "intent") if c not in reader.fieldnames]
            if missing:
                raise AugmentError(f"{name} line 1: missing column {', '.join(missing)} (need text,intent)")
            for record in reader:
                rows.append((reader.line_num, record))  # the line the record ends on: blank lines are skipped
        except csv.Error as exc:
            raise AugmentError(f"{name} line {reader.line_num}: not valid CSV ({exc})") from None
    known = set(intents) if intents is not None else None
    seeds: list[Seed] = []
    for n, row in rows:
        text, intent = row.get("text"), row.get("intent")
        for key, value in (("text", text), ("intent", intent)):
            if value is not None and not isinstance(value, str):
                raise AugmentError(f"{name} line {n}, field {key}: must be text, not {type(value).__name__}")
        if not isinstance(text, str) or not text.strip():
            raise AugmentError(f"{name} line {n}, field text: empty or missing")
        if not isinstance(intent, str) or not intent.strip():
            raise AugmentError(f"{name} line {n}, field intent: empty or missing")
        intent = intent.strip()
        if known is not None and intent not in known:
            raise AugmentError(
                f"{name} line {n}, field intent: {intent!r} is not an intent of the spec "
                f"({', '.join(sorted(known))})"
            )
        seeds.append(Seed(text=" ".join(text.split()), intent=intent, source=f"{name}:{n}"))
    if not seeds:
        raise AugmentError(f"{name}: no seed examples")
    return seeds


# -- what comes out -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DialogueTurn:
    """One message of a generated dialogue."""

    speaker: Literal["user", "assistant"]
    text: str
    intent: str | None = None
    acts: tuple[str, ...] = ()
    slots: tuple[GoldSlot, ...] = ()


@dataclass(frozen=True)
class Candidate:
    """A generated example before the gates: text with gold labels and where it came from."""

    text: str
    """The user's words (for a dialogue, its first user message)."""
    intent: str
    kind: Kind
    method: str
    """The chain of methods that made it, `source>transform>...`."""
    origin: str
    """What it was made from: `seed:<file:line>`, `template:<intent>#<n>` or `paraphrase:<file:line>`."""
    slots: tuple[GoldSlot, ...] = ()
    acts: tuple[str, ...] = ("inform_intent",)
    edits: tuple[Edit, ...] = ()
    turns: tuple[DialogueTurn, ...] = ()
    """The whole dialogue, for `kind == "dialogue"`."""
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def user_text(self) -> str:
        """Everything the user says (all user turns of a dialogue), for the gates that read words."""
        if not self.turns:
            return self.text
        return " ".join(t.text for t in self.turns if t.speaker == "user")


def method_names() -> list[str]:
    """Every method a batch may name: sources, transforms and one `perturb:<name>` per text perturbation."""
    text_perturbations = [n for n, s in perturbations().items() if s.level == "text"]
    return [*SOURCES, *TRANSFORMS, *(f"perturb:{n}" for n in text_perturbations)]


# -- the expander -----------------------------------------------------------------------------------------


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


@dataclass(frozen=True)
class _Pattern:
    """A text with placeholders: `{slot}` for values, and an optional leading frame."""

    frame: str | None
    body: str
    origin: str


class Expander:
    """Makes candidates for one intent at a time from a spec, seeds and a list of named methods.

    Args:
        spec: intents, slot values, synonyms and frames.
        seeds: the real examples (any intents; those of other intents feed near-miss negatives).
        methods: names from `method_names()`; at least one source.
        seed: the batch's random seed.
        transform_rate: chance that each transform in `methods` edits a candidate.
        paraphrases: seed source -> paraphrases already fetched (by `LLMParaphraser`), for the
            `llm_paraphrase` source; the expander itself never calls a model.

    Raises:
        AugmentError: an unknown method, no source among them, or `wordnet` without WordNet installed.
    """

    def __init__(
        self,
        spec: GenerationSpec,
        seeds: Sequence[Seed],
        methods: Sequence[str],
        *,
        seed: int = 0,
        transform_rate: float = 0.5,
        paraphrases: Mapping[str, Sequence[str]] | None = None,
        wordnet_dir: Path = WORDNET_DIR,
    ) -> None:
        known = method_names()
        names = list(dict.fromkeys(methods))  # a method named twice runs once
        unknown = [m for m in names if m not in known]
        if unknown:
            raise AugmentError(
                f"unknown method {', '.join(unknown)}; known: {', '.join(known)} "
                "(`botdrill generate --list-methods` lists them)"
            )
        sources = [m for m in names if m in SOURCES]
        if not sources:
            raise AugmentError(f"no source among the methods: name at least one of {', '.join(SOURCES)}")
        self.spec = spec
        self.seeds = list(seeds)
        self.methods = names
        self.seed = seed
        self.transform_rate = transform_rate
        self.paraphrases = dict(paraphrases or {})
        self._sources = sources
        self._transforms = [m for m in names if m not in SOURCES]
        self._wordnet: _WordNet | None = None
        if "wordnet" in names:
            if not wordnet_available(wordnet_dir):
                raise AugmentError(
                    f"method wordnet needs WordNet's data files in {wordnet_dir} (Debian package "
                    "wordnet-base: apt-get install wordnet-base); install it or leave the method out"
                )
            self._wordnet = _load_wordnet(str(wordnet_dir))
        self._values = {
            slot: list(dict.fromkeys(v for v in vs if v.strip())) for slot, vs in spec.slots.items()
        }
        # One pattern for every known value, longest first, so "american express" wins over "express"; a
        # value two slots share belongs to the first.
        self._slot_of: dict[str, str] = {}
        for slot, vs in self._values.items():
            for v in vs:
                self._slot_of.setdefault(_folded(v), slot)
        self._value_re = _alternation(sorted(self._slot_of, key=lambda v: (-len(v), v)))
        # Lower case, longest first, ties in alphabetical order: the order (and so every draw) is fixed.
        self._frames = sorted({_folded(f) for f in spec.frames if f.strip()}, key=_longest)
        self._frame_re = _alternation(self._frames, lead=True)
        self._synonyms = [list(dict.fromkeys(w.strip() for w in g)) for g in spec.synonyms]
        self._patterns: dict[tuple[str, str], list[_Pattern]] = {}

    # -- patterns ---------------------------------------------------------------------------------------

    def _split_frame(self, text: str) -> tuple[str | None, str]:
        """`text`'s leading request frame, as written, and the rest; `(None, text)` without one."""
        if self._frame_re is not None:
            m = self._frame_re.match(text)
            if m is not None and len(text) - m.end() >= 3:
                return m.group(1), text[m.end() :]
        return None, text

    def _slotted(self, text: str) -> str:
        """`text` with every known slot value replaced by its placeholder (whole words only)."""
        if self._value_re is None:
            return text

        def placeholder(m: re.Match[str]) -> str:
            slot = self._slot_of.get(_folded(m.group(0)))
            return m.group(0) if slot is None else "{" + slot + "}"

        return self._value_re.sub(placeholder, text)

    def patterns(self, intent: str, source: str) -> list[_Pattern]:
        """The patterns a source offers for `intent` (empty when it has nothing for it)."""
        key = (intent, source)
        if key not in self._patterns:
            self._patterns[key] = self._make_patterns(intent, source)
        return list(self._patterns[key])

    def _make_patterns(self, intent: str, source: str) -> list[_Pattern]:
        out: list[_Pattern] = []
        if source == "pack":
            entry = self._entry(intent)
            for n, template in enumerate(entry.templates if entry is not None else ()):
                frame, body = self._split_frame(template)
                out.append(_Pattern(frame, body, f"template:{intent}#{n}"))
        elif source == "seed_templates":
            for s in self.seeds:
                if s.intent == intent:
                    frame, body = self._split_frame(self._slotted(s.text))
                    out.append(_Pattern(frame, body, f"seed:{s.source}"))
        elif source == "llm_paraphrase":
            for s in self.seeds:
                if s.intent != intent:
                    continue
                for n, text in enumerate(self.paraphrases.get(s.source, ())):
                    frame, body = self._split_frame(self._slotted(" ".join(text.split())))
                    out.append(_Pattern(frame, body, f"paraphrase:{s.source}#{n}"))
        return out

    def _entry(self, intent: str) -> IntentEntry | None:
        try:
            return self.spec.intent(intent)
        except KeyError:
            return None

    # -- candidates -------------------------------------------------------------------------------------

    def candidates(self, intent: str, n: int, *, kind: Kind = "utterance") -> list[Candidate]:
        """`n` candidates for `intent` (fewer only when no source has anything for it).

        Candidate `i` depends only on the inputs and `i`: asking for more extends the list.
        """
        usable = [s for s in self._sources if self.patterns(intent, s)]
        if not usable:
            return []
        out = []
        for i in range(n):
            rng = _rng(self.seed, intent, kind, i)
            source = usable[i % len(usable)]
            pattern = rng.choice(self.patterns(intent, source))
            out.append(self._realise(intent, source, pattern, rng, kind))
        return out

    def _realise(
        self, intent: str, source: str, pattern: _Pattern, rng: random.Random, kind: Kind
    ) -> Candidate:
        frame, body = pattern.frame, pattern.body
        chain = [source]
        if frame is not None and rng.random() < 0.7:
            frame, body = _swap_frame(frame, rng.choice(self._frames), body)
        text, slots = self._fill(((frame + " ") if frame else "") + body, rng)
        utt = Utterance(text=text, intent=intent, acts=("inform_intent",), slots=slots)
        for transform in self._transforms:
            if rng.random() >= self.transform_rate:
                continue
            before = utt.text
            if transform == "lexical":
                utt = self._lexical(utt, rng)
            elif transform == "wordnet":
                utt = self._wordnet_swap(utt, rng)
            else:
                spec = get_perturbation(transform.removeprefix("perturb:"))
                utt = spec(utt, rng, 1, NoiseContext())
            if utt.text != before:
                chain.append(transform)
        return Candidate(
            text=utt.text,
            intent=intent,
            kind=kind,
            method=">".join(chain),
            origin=pattern.origin,
            slots=utt.slots,
            edits=utt.edits,
        )

    def _fill(self, template: str, rng: random.Random) -> tuple[str, tuple[GoldSlot, ...]]:
        parts: list[str] = []
        slots: list[GoldSlot] = []
        pos = 0
        length = 0
        for m in _PLACEHOLDER.finditer(template):
            lead = template[pos : m.start()]
            parts.append(lead)
            length += len(lead)
            values = self._values.get(m.group(1))
            if not values:  # a brace pair that is no slot stays as written
                parts.append(m.group(0))
                length += len(m.group(0))
            else:
                value = rng.choice(values)
                slots.append(GoldSlot(slot=m.group(1), value=value, start=length, end=length + len(value)))
                parts.append(value)
                length += len(value)
            pos = m.end()
        parts.append(template[pos:])
        return "".join(parts), tuple(slots)

    def _lexical(self, utt: Utterance, rng: random.Random) -> Utterance:
        """A word or phrase outside every slot value swapped for another member of its synonym group."""
        hits: list[tuple[int, int, list[str]]] = []
        for group in self._synonyms:
            for word in group:
                folded = word.casefold()
                options = [w for w in group if w.casefold() != folded]
                if not options:
                    continue
                for m in re.finditer(r"(?<![\w'])" + re.escape(word) + r"(?![\w'])", utt.text, re.IGNORECASE):
                    if not utt.protected(m.start(), m.end()):
                        hits.append((m.start(), m.end(), options))
        if not hits:
            return utt
        start, end, options = rng.choice(sorted(hits))
        new = _same_case(utt.text[start:end], rng.choice(options))
        return utt.replace(start, end, new, perturbation="lexical", kind="synonym", intensity=1)

    def _wordnet_swap(self, utt: Utterance, rng: random.Random) -> Utterance:
        """A content word outside every slot value swapped for a WordNet synonym of its likeliest sense."""
        assert self._wordnet is not None
        spans: list[tuple[int, int, list[str]]] = []
        for start, end in utt.free_words():
            word = utt.text[start:end].casefold()
            if word in _STOPWORDS:
                continue
            before = _WORD.findall(utt.text[:start].casefold())
            options = self._wordnet.synonyms(word, _pos_hint(before[-1] if before else None))
            if options:
                spans.append((start, end, options))
        if not spans:
            return utt
        start, end, options = rng.choice(spans)
        new = _same_case(utt.text[start:end], rng.choice(options))
        return utt.replace(start, end, new, perturbation="wordnet", kind="synonym", intensity=1)

    # -- dialogues and negatives ----------------------------------------------------------------------

    def dialogues(self, intent: str, n: int, *, escalate: bool = False) -> list[Candidate]:
        """`n` short dialogues: the user's request, a clarifying question, the user saying it again in
        other words, and the assistant's close (a hand-off when `escalate`).

        The second user message is another candidate of the same intent, from another pattern of the same
        source as the first when there is one (else another source's, else the same pattern drawn afresh),
        so every user turn carries the gold intent and its own slot spans.
        """
        firsts = self.candidates(intent, n, kind="dialogue")
        out = []
        for i, first in enumerate(firsts):
            rng = _rng(self.seed, intent, "dialogue-turns", i)
            again = self._restatement(intent, first, rng)
            close = rng.choice(_HANDOFFS if escalate else _CLOSES)
            turns = (
                DialogueTurn("user", first.text, intent, ("inform_intent",), first.slots),
                DialogueTurn("assistant", rng.choice(_CLARIFY), None, ("request_more",)),
                DialogueTurn("user", again.text, intent, ("restate",), again.slots),
                DialogueTurn("assistant", close, None, ("handoff",) if escalate else ("confirm",)),
            )
            out.append(replace(first, turns=turns, method=first.method + "+dialogue"))
        return out

    def _restatement(self, intent: str, first: Candidate, rng: random.Random) -> Candidate:
        """The user's second message: the intent said again from another pattern, of the first's source
        when it has one."""
        source = first.method.split(">")[0]
        order = [source, *(s for s in self._sources if s != source)]
        for s in order:
            others = [p for p in self.patterns(intent, s) if p.origin != first.origin]
            if others:
                return self._realise(intent, s, rng.choice(others), rng, "dialogue")
        same = [p for p in self.patterns(intent, source) if p.origin == first.origin]
        if same:
            return self._realise(intent, source, same[0], rng, "dialogue")
        return first  # nothing else to draw on: the user says it again word for word

    def negatives(self, intent: str, n: int) -> list[Candidate]:
        """Near misses for `intent`: texts of the other intents of the spec that share its words most,
        labelled with the intent they are (seeds and template fills of those intents), with
        `meta["near"] == intent`.

        They teach a classifier where the rare intent ends ("freeze my card" is not "my account is
        frozen"); the gates keep only those the reference classifier confirms as their own label.
        """
        target_words: set[str] = set()
        for p in self.patterns(intent, "pack") + self.patterns(intent, "seed_templates"):
            target_words |= _content_words(_PLACEHOLDER.sub(" ", p.body))
        pool: list[tuple[float, int, Candidate]] = []
        seen: set[str] = set()
        for entry in self.spec.intents:
            if entry.name == intent:
                continue
            for cand in self.candidates(entry.name, max(4, n), kind="negative"):
                folded = _folded(cand.text)
                words = _content_words(self._split_frame(cand.text)[1])
                if not words or folded in seen:
                    continue
                seen.add(folded)
                overlap = len(words & target_words) / len(words)
                if overlap > 0:
                    pool.append((-overlap, len(pool), replace(cand, meta={"near": intent})))
        pool.sort(key=lambda t: (t[0], t[1]))
        return [c for _, _, c in pool[:n]]


def _alternation(phrases: Sequence[str], *, lead: bool = False) -> re.Pattern[str] | None:
    """One case-blind pattern for whole-word `phrases` (tried in the order given), or `None` for none.

    With `lead`, it matches a phrase at the start of a text, followed by white space (group 1: the phrase).
    """
    if not phrases:
        return None
    body = "|".join(r"\s+".join(map(re.escape, p.split())) for p in phrases)
    if lead:
        return re.compile(rf"\s*({body})\s+(?=\S)", re.IGNORECASE)
    return re.compile(rf"(?<![\w'])(?:{body})(?![\w'])", re.IGNORECASE)


def _longest(phrase: str) -> tuple[int, str]:
    return -len(phrase), phrase


_QUESTION_FRAME = re.compile(r"(?i)(can|could|how|is|would|will|may|shall)\b")


def _swap_frame(old: str, new: str, body: str) -> tuple[str, str]:
    """`new` (a lower-case frame) written like `old` ("Can I" -> "I need to"), and `body` with its final
    "?" or "." following suit when it is one sentence ("i need to freeze my card?" reads as an error)."""
    new = _same_case(old, new)
    if old[:1].isupper() or re.search(r"\bI\b", old):
        new = re.sub(r"\bi\b", "I", new)
    asks = _QUESTION_FRAME.match(new) is not None
    if body.endswith(("?", ".")) and not re.search(r"[.?!]", body[:-1]):
        body = body[:-1] + ("?" if asks else ".")
    return new, body


def _same_case(old: str, new: str) -> str:
    """`new`, capitalised when `old` is: "Help" -> "Assist" ("Apple Pay" keeps its capitals anywhere)."""
    if old[:1].isupper() and new[:1].islower():
        return new[:1].upper() + new[1:]
    return new


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _folded(text: str) -> str:
    return " ".join(text.casefold().split())


def _content_words(text: str) -> set[str]:
    return set(_WORD.findall(text.casefold())) - _STOPWORDS


_NOUN_BEFORE = _wordset("a an the my your his her our their its this that these those new old another")
_VERB_BEFORE = _wordset("to i you we they please can could would will don't can't didn't won't")


def _pos_hint(previous: str | None) -> str | None:
    """What a word probably is after `previous`: `v` (a verb, after "to" or "i"), `na` (a noun or an
    adjective, after "my" or "the"), or `None` (no guess)."""
    if previous in _VERB_BEFORE:
        return "v"
    if previous in _NOUN_BEFORE:
        return "na"
    return None


_CLARIFY = (
    "Sorry, could you tell me a bit more about what's happened?",
    "I want to make sure I get this right. What do you need help with?",
    "Could you explain that in a little more detail?",
    "Thanks. Can you say a bit more so I can point you the right way?",
)
_CLOSES = (
    "Thanks, that's all sorted for you. Anything else?",
    "Done. Is there anything else I can help with?",
    "Okay, I've taken care of that.",
)
_HANDOFFS = (
    "I'm connecting you to a member of our team who can help with this right away.",
    "Let me pass you to a colleague who can sort this out now.",
    "I'm transferring you to a specialist. Please stay on the line.",
)

_STOPWORDS = _wordset(
    """a an the i me my mine you your we our it its is am are was were be been being to of in on at for
    from with by and or but not no so if do does did can could would should will shall may might must
    have has had this that these those there here what which who whom when where why how please just
    about up out off over all any some like also more very really still back now then as than too get got
    go make set take put let keep thing something anything nothing everything one"""
)


# -- WordNet (optional) --------------------------------------------------------------------------------


def wordnet_available(directory: Path = WORDNET_DIR) -> bool:
    """Whether WordNet's data and index files are installed (Debian's `wordnet-base` puts them in
    /usr/share/wordnet)."""
    return all(
        (directory / f"{kind}.{pos}").is_file()
        for kind in ("data", "index")
        for pos in _WORDNET_FILES.values()
    )


_WORDNET_FILES = {"n": "noun", "v": "verb", "a": "adj"}
# cntlist.rev's synset types: 1 noun, 2 verb, 3 adjective, 4 adverb, 5 adjective satellite.
_SENSE_POS = {"1": "n", "2": "v", "3": "a", "5": "a"}


class _WordNet:
    """Synonyms of a word's most frequent sense, read from WordNet's own files: no NLTK, no download.

    `index.<pos>` lists each word's synsets most frequent first, so its first offset is the word's most
    frequent sense in that part of speech; `cntlist.rev` (when present) counts how often each first sense
    was seen in a tagged corpus, which says in which part of speech a word is most common. A synset is
    read from `data.<pos>` when first asked for: its offset is a byte offset into that file.
    """

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._senses: dict[str, dict[str, tuple[int, int]]] = {}
        """word -> part of speech -> (offset of its most frequent synset, tagged senses)."""
        for pos, name in _WORDNET_FILES.items():
            self._read_index(pos, directory / f"index.{name}")
        self._first_counts: dict[tuple[str, str], int] = {}
        counts = directory / "cntlist.rev"
        if counts.is_file():
            self._read_counts(counts)
        # Irregular forms ("lost lose", "children child"): "lost" is the verb, not the adjective.
        self._irregular: set[str] = set()
        for name in _WORDNET_FILES.values():
            exc = directory / f"{name}.exc"
            if exc.is_file():
                with exc.open(encoding="utf-8", errors="replace") as fh:
                    self._irregular.update(line.split()[0] for line in fh if line.strip())
        self._cache: dict[tuple[str, str], list[str]] = {}

    def _read_index(self, pos: str, path: Path) -> None:
        # lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt synset_offset [synset_offset...]
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith(" "):
                    continue  # licence header
                fields = line.split()
                if len(fields) < 7 or "_" in fields[0]:
                    continue  # malformed, or a phrase (only single words are swapped)
                pointers = int(fields[3])
                tagged, offset = int(fields[5 + pointers]), int(fields[6 + pointers])
                self._senses.setdefault(fields[0], {})[pos] = (offset, tagged)

    def _read_counts(self, path: Path) -> None:
        # sense_key sense_number tag_cnt, with sense_key = lemma%ss_type:lex_filenum:lex_id:head_word:head_id
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                fields = line.split()
                if len(fields) != 3 or fields[1] != "1" or "%" not in fields[0]:
                    continue
                lemma, key = fields[0].split("%", 1)
                pos = _SENSE_POS.get(key[:1])
                if pos is not None and lemma in self._senses:
                    self._first_counts[(lemma, pos)] = max(
                        self._first_counts.get((lemma, pos), 0), int(fields[2])
                    )

    def synonyms(self, word: str, pos: str | None = None) -> list[str]:
        """Single-word synonyms of `word`'s most frequent sense in its most common part of speech among
        `pos` (letters of `n`, `v`, `a`; any when `None` or when the word is none of them); empty when that
        sense has none, or when `word` is an inflected verb form."""
        senses = self._senses.get(word)
        if not senses or self._inflected(word):
            return []
        allowed = [p for p in senses if pos is None or p in pos] or list(senses)
        best = max(allowed, key=lambda p: (self._first_counts.get((word, p), 0), senses[p][1]))
        key = (word, best)
        if key not in self._cache:
            self._cache[key] = self._synset_words(best, senses[best][0], word)
        return self._cache[key]

    def _inflected(self, word: str) -> bool:
        """Whether `word` is probably a form of a verb rather than a lemma of its own: irregular ("lost"),
        or "-ing"/"-ed" on a verb ("reporting" is the noun "reportage" in WordNet, not the verb)."""
        if word in self._irregular:
            return True
        for suffix in ("ing", "ed"):
            if len(word) >= len(suffix) + 2 and word.endswith(suffix):
                stem = word[: -len(suffix)]
                stems = {stem, stem + "e", stem[:-1] if stem[-1:] == stem[-2:-1] else stem}
                if stem.endswith("i"):
                    stems.add(stem[:-1] + "y")
                if any("v" in self._senses.get(s, {}) for s in stems):
                    return True
        return False

    def _synset_words(self, pos: str, offset: int, word: str) -> list[str]:
        # synset_offset lex_filenum ss_type w_cnt word lex_id [word lex_id...] p_cnt ...  (w_cnt in hex)
        with (self._dir / f"data.{_WORDNET_FILES[pos]}").open("rb") as fh:
            fh.seek(offset)
            fields = fh.readline().decode("utf-8", errors="replace").split()
        if len(fields) < 5 or not fields[0].isdigit() or int(fields[0]) != offset:
            return []  # an index that does not match its data file
        count = int(fields[3], 16)
        out: list[str] = []
        for k in range(count):
            if 4 + 2 * k >= len(fields):
                break
            # an adjective may carry a syntactic marker: "lost(p)"
            lemma = re.sub(r"\([a-z]+\)$", "", fields[4 + 2 * k]).casefold()
            if "_" not in lemma and lemma != word and lemma not in out:
                out.append(lemma)
        return out[:5]


@cache
def _load_wordnet(directory: str) -> _WordNet:
    return _WordNet(Path(directory))
