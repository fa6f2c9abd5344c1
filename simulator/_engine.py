"""The work of a dialogue step, done for a whole cohort of live dialogues at once.

Each step function takes the list of live dialogues and advances every one of them: the user speaks, the
assistant answers (one batch call for a batch assistant, `asyncio.gather` under a semaphore otherwise),
the answer is observed and checked for an end. Finished dialogues are scored and handed to a sink; new ones
join from the source. The LangGraph graph (`_graph.py`) wires these functions as nodes; the same functions
in a bare loop (`run_plain`) give the baseline the benchmark compares with.

One step of a dialogue is one user message and the assistant's answer to it. A user turn may be several
messages (fragments), and an impatient user may send one more while it waits; the dialogue's SimPy clock
(`_clock.py`) decides when each is sent, so the assistant answers messages in the order they arrived and
the stored transcript is in the order things happened.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Literal

from botdrill.agents import (
    Agenda,
    AgendaUser,
    Edit,
    GoldSlot,
    Message,
    NoiseContext,
    Reply,
    UserTurn,
    Utterance,
    apply_chain,
    behaviour_of,
)
from botdrill.agents._adapters import (
    Assistant,
    AssistantProtocolError,
    AssistantTimeout,
    BatchAssistant,
    coerce_reply,
    describe_raw,
)
from botdrill.agents._disfluency import STOPWORDS
from botdrill.agents._judge import Judge, Judgement, RuleJudge
from botdrill.agents._llm import METER, Usage
from botdrill.agents._perturb import EditSelection
from botdrill.agents._user import AgendaState
from botdrill.policies import EscalationSpec
from botdrill.scenarios import Pack, Scenario, dialogue_rng

from ._clock import DialogueClock, Sent
from ._records import DialogueRecord, EndReason, SlotCheck, TurnRecord
from ._scoring import score
from ._variants import CLEAN, Job

if TYPE_CHECKING:
    from botdrill.agents._llm_user import LLMUser

_CONTENT_WORD = re.compile(r"[a-z]{4,}")
# Frequent words of the packs' openings that are not things a person names by mistake.
_NOT_THINGS = frozenset(
    {
        "sure",
        "think",
        "know",
        "need",
        "want",
        "help",
        "please",
        "thanks",
        "thank",
        "just",
        "still",
        "even",
        "never",
        "ever",
        "else",
        "what",
        "when",
        "where",
        "which",
        "there",
        "their",
        "them",
        "they",
        "this",
        "that",
        "these",
        "those",
        "with",
        "without",
        "would",
        "should",
        "could",
        "maybe",
        "really",
        "right",
        "wrong",
        "going",
        "gone",
        "doing",
        "done",
        "make",
        "made",
        "take",
        "taken",
        "seen",
        "look",
        "looks",
        "like",
        "will",
        "cannot",
    }
)
# The built-in bot answers in microseconds; the clock gives it the latency of a deployed assistant that
# looks things up: log-normal, median 2 s, about one reply in twelve over 5 s.
_LATENCY_MU, _LATENCY_SIGMA = math.log(1.75), 0.7
# Share of the persona's patience an impatient user waits at intensity 1, 2, 3.
_IMPATIENCE = {0: 1.0, 1: 0.3, 2: 0.1, 3: 0.0}


@dataclass(frozen=True)
class Outgoing:
    """A user message queued on the clock, with its gold labels."""

    text: str
    intent: str
    acts: tuple[str, ...]
    slots: tuple[GoldSlot, ...]
    edits: tuple[Edit, ...]
    part: int
    """Position of the message in its user turn (fragments), from 0."""
    parts: int
    """Messages in that user turn."""
    fault: str | None = None
    """An LLM user's consistency-check fault on this turn (first message only)."""
    llm: str | None = None
    """An LLM user's plan and answer for this turn, as JSON text (first message only)."""

    @property
    def last(self) -> bool:
        return self.part == self.parts - 1


@dataclass
class LiveDialogue:
    """Everything about one dialogue in flight."""

    job: Job
    agenda: Agenda
    thread_id: str
    clock: DialogueClock[Outgoing]
    latency_rng: random.Random | None
    """The modelled latency's stream; `None` when latency is measured."""
    interjection_cap: int
    messages: list[Message] = field(default_factory=list)
    turns: list[TurnRecord] = field(default_factory=list)
    current: Sent[Outgoing] | None = None
    user_turns: int = 0
    last_reply: str | None = None
    end_reason: EndReason | None = None
    error: tuple[str, str] | None = None
    requested_human: bool = False
    pending: Reply | BaseException | None = None
    pending_undo: tuple[AgendaState, int] | None = None
    """The user's state before composing an interjection, restored if the reply overtakes it."""
    latency_ms: float = 0.0
    usage: Usage = field(default_factory=Usage)
    """The dialogue's LLM calls (user, assistant, judge), counted as they are made."""
    composed: UserTurn | BaseException | None = None
    """An LLM user's next turn, composed before the user step sends it (or why it could not be)."""
    judged: Judgement | None = None
    """The judge's reading of the pending reply, when the bot exposed no intent or hand-off."""
    exposes_intent: bool = False
    """Whether the bot has exposed an intent of its own in this dialogue."""

    @property
    def done(self) -> bool:
        return self.end_reason is not None

    @property
    def scenario(self) -> Scenario:
        return self.job.scenario


Finished = tuple[DialogueRecord, list[TurnRecord], list[SlotCheck]]


@dataclass
class Engine:
    """One run's moving parts: the pack, the user simulator, the assistant, and where results go.

    Args:
        pack: scenario pack.
        run_id: the run's id, used in dialogue ids.
        assistant: the assistant under test.
        source: dialogues still to simulate, in order (a bare scenario runs clean).
        sink: receives each finished, scored dialogue.
        cohort: how many dialogues are in flight at once.
        max_turns: assistant turns after which a dialogue stops.
        timeout: seconds an assistant may take for one reply.
        modelled_latency: use a deterministic latency model for the simulated clock (for the built-in bot,
            whose real latency is a batch artefact) instead of the measured one.
        policy: the name of the escalation policy wrapped around the assistant, stored on each dialogue.
        count_edits: record how many text edits each user turn attempted, in `attempts` (for shrinking).
        llm_user: an LLM user to word the agenda user's turns (see `botdrill.agents._llm_user`); `None`
            for the agenda user alone.
        judge: infers the intent and hand-off a reply does not expose (default: the rule judge).
    """

    pack: Pack
    run_id: str
    assistant: Assistant | BatchAssistant
    source: Iterator[Job | Scenario]
    sink: Callable[[Finished], None]
    cohort: int = 256
    max_turns: int = 12
    timeout: float = 30.0
    modelled_latency: bool = False
    policy: str = "none"
    count_edits: bool = False
    llm_user: LLMUser | None = None
    judge: Judge | None = None
    attempts: dict[str, dict[int, int]] = field(init=False, default_factory=dict)
    """With `count_edits`: per dialogue id, the text edits each user turn attempted."""
    user: AgendaUser = field(init=False)
    spec: EscalationSpec = field(init=False)
    _semaphore: asyncio.Semaphore | None = field(init=False, default=None)
    _distractors: tuple[str, ...] = field(init=False)
    _crisis: re.Pattern[str] | None = field(init=False)
    _rules: RuleJudge = field(init=False)

    def __post_init__(self) -> None:
        # An LLM user plans with its own agenda user; starting and interjecting are the agenda's.
        self.user = self.llm_user.planner if self.llm_user is not None else AgendaUser(self.pack)
        if self.judge is None:
            self.judge = RuleJudge(self.pack)
        # What stands in for an LLM judge that fails on a reply.
        self._rules = self.judge if isinstance(self.judge, RuleJudge) else RuleJudge(self.pack)
        self.spec = EscalationSpec.from_pack(self.pack)
        crisis = self.pack.triggers.crisis
        self._crisis = (
            re.compile(r"(?<!\w)(?:" + "|".join(re.escape(c.lower()) for c in crisis.cues) + r")(?!\w)")
            if crisis
            else None
        )
        # Words a restart or a correction may say by mistake: the pack's own content words and the values
        # of its choice slots (another shop, another payee).
        words = {
            w
            for intent in self.pack.intents
            for text in (*intent.openings, *intent.restatements)
            for w in _CONTENT_WORD.findall(text.lower())
            if w not in STOPWORDS and not w.endswith("ly") and w not in _NOT_THINGS
        }
        values = {v for slot in self.pack.slots for v in slot.values}
        self._distractors = tuple(sorted(words | values))

    # -- the four steps --------------------------------------------------------------------------

    def admit(self, live: list[LiveDialogue]) -> list[LiveDialogue]:
        """Hand finished dialogues to the sink and fill the cohort up from the source."""
        still: list[LiveDialogue] = []
        for dialogue in live:
            if dialogue.done:
                self._finish(dialogue)
            else:
                still.append(dialogue)
        while len(still) < self.cohort:
            item = next(self.source, None)
            if item is None:
                break
            job = item if isinstance(item, Job) else Job(item, CLEAN, item.index)
            still.append(self._start(job))
        return still

    def _start(self, job: Job) -> LiveDialogue:
        scenario, noise = job.scenario, job.variant.dialogue_noise
        behaviour = behaviour_of(scenario.persona)
        impatience = max(noise.get("barge_in", 0), noise.get("double_text", 0))
        return LiveDialogue(
            job=job,
            agenda=self.user.start(scenario, noise),
            thread_id=job.dialogue_id(self.run_id),
            clock=DialogueClock(
                typing_cps=behaviour.typing_cps,
                think_s=behaviour.think_s,
                reading_cps=behaviour.reading_cps,
                wait_s=behaviour.wait_patience_s * _IMPATIENCE[impatience],
            ),
            latency_rng=dialogue_rng(scenario.seed, scenario.index, "latency")
            if self.modelled_latency
            else None,
            interjection_cap=1 + impatience,
        )

    async def user_step(self, live: list[LiveDialogue]) -> None:
        """Every live dialogue's user sends its next message (composing a new turn when it has none).

        An LLM user's turns are composed first, all at once (`asyncio.gather`); the agenda user's in line.
        """
        if self.llm_user is not None:
            composing = [d for d in live if not d.done and d.current is None and not d.clock.queued]
            if composing:
                await asyncio.gather(*(self._compose(d) for d in composing))
        for d in live:
            if d.done or d.current is not None:
                continue
            if not d.clock.queued:
                composed, d.composed = d.composed, None
                turn = composed if composed is not None else self.user.next_turn(d.agenda, d.last_reply)
                if isinstance(turn, BaseException):
                    self._user_failed(d, turn)
                    continue
                if "abandon" in turn.acts:
                    self._abandon(d, turn)
                    continue
                items = self._realise(d, turn)
                d.clock.type_turn(items, [i.text for i in items], after_reading=d.last_reply)
            sent = d.clock.next_message()
            self._send(d, sent)

    async def _compose(self, d: LiveDialogue) -> None:
        """The LLM user's next turn for `d`, its calls counted on the dialogue; a failure is kept."""
        assert self.llm_user is not None
        METER.set(d.usage)  # this task's own context: only this dialogue's calls are counted here
        trial = d.job.trial
        try:
            d.composed = await self.llm_user.next_turn(
                d.agenda, d.last_reply, d.messages, salt=f"trial:{trial}" if trial else None
            )
        except Exception as exc:  # the user's model failed: the dialogue records it, the run goes on
            d.composed = exc

    def _user_failed(self, d: LiveDialogue, exc: BaseException) -> None:
        """The LLM user could not speak: an empty, failed user turn ends the dialogue (not scored)."""
        kind = type(exc).__name__
        d.error = (kind, str(exc) or kind)
        d.turns.append(
            TurnRecord(turn_idx=len(d.turns), speaker="user", text="", sim_time=d.clock.now, error_type=kind)
        )
        d.end_reason = "user_error"

    def _realise(self, d: LiveDialogue, turn: UserTurn, *, whole: bool = False) -> list[Outgoing]:
        """The variant's text perturbations applied to a turn, and the messages it is sent as."""
        d.user_turns += 1
        # A value said by mistake is marked where it stands, so perturbations move the mark with the text.
        mistakes = tuple(
            Edit(
                perturbation="correction",
                kind="retracted_value",
                start=r.start,
                end=r.end,
                before=d.scenario.goal.slots[r.slot],
                after=turn.text[r.start : r.end],
                intensity=0,
            )
            for r in turn.retracted
        )
        utt = Utterance(
            text=turn.text, intent=turn.intent, acts=tuple(turn.acts), slots=tuple(turn.slots), edits=mistakes
        )
        # Crisis cues are read from what the user means to say, before any typo can hide them.
        acts: tuple[str, ...] = utt.acts
        if self._crisis is not None and self._crisis.search(turn.text.lower().replace("\u2019", "'")):
            acts += ("crisis_cue",)
        chain = d.job.variant.text_chain
        if chain:
            scenario, n, keep = d.scenario, d.user_turns, d.job.keep
            selection = None
            if keep is not None or self.count_edits:
                selection = EditSelection(keep=lambda j: keep is None or (n, j) in keep)
            utt = apply_chain(
                utt,
                chain,
                lambda name: dialogue_rng(scenario.seed, scenario.index, f"noise:{name}:{n}"),
                NoiseContext(
                    pack=self.pack, distractors=self._distractors, channel=scenario.persona.channel.value
                ),
                selection,
            )
            if selection is not None:
                self.attempts.setdefault(d.thread_id, {})[n] = selection.attempted
            if mistakes:  # a typo in a wrong value: the mark says what stands there now
                text = utt.text
                utt = replace(
                    utt,
                    edits=tuple(
                        replace(e, after=text[e.start : e.end]) if e.perturbation == "correction" else e
                        for e in utt.edits
                    ),
                )
        if whole:
            utt = replace(utt, breaks=())
        pieces = utt.messages()
        out = []
        for i, piece in enumerate(pieces):
            marks = tuple(
                Edit(
                    perturbation=name,
                    kind=name,
                    start=0,
                    end=len(piece.text),
                    before="",
                    after=piece.text,
                    intensity=level,
                )
                for name, level in turn.noise
            )
            out.append(
                Outgoing(
                    text=piece.text,
                    intent=utt.intent,
                    acts=acts,
                    slots=piece.slots,
                    edits=piece.edits + marks,
                    part=i,
                    parts=len(pieces),
                    fault=turn.fault if i == 0 else None,
                    llm=json.dumps(turn.llm, ensure_ascii=False) if i == 0 and turn.llm else None,
                )
            )
        return out

    def _send(self, d: LiveDialogue, sent: Sent[Outgoing]) -> None:
        msg = sent.item
        self._record(d, sent)
        if msg.last and "give_up" in msg.acts:
            d.end_reason = "user_gave_up"
        elif msg.last and "goodbye" in msg.acts:
            d.end_reason = "user_done"
        else:
            d.current = sent

    def _record(self, d: LiveDialogue, sent: Sent[Outgoing]) -> None:
        msg = sent.item
        d.turns.append(
            TurnRecord(
                turn_idx=len(d.turns),
                speaker="user",
                text=msg.text,
                sim_time=sent.at,
                gold_intent=msg.intent,
                gold_acts=list(msg.acts),
                gold_slots=list(msg.slots),
                part=msg.part,
                parts=msg.parts,
                edits=list(msg.edits),
                user_fault=msg.fault,
                raw=msg.llm,
            )
        )
        d.messages.append({"role": "user", "content": msg.text})
        if "request_human" in msg.acts:
            d.requested_human = True

    def _abandon(self, d: LiveDialogue, turn: UserTurn) -> None:
        """The user leaves without a word: an empty row marks when, and nothing is sent."""
        d.turns.append(
            TurnRecord(
                turn_idx=len(d.turns),
                speaker="user",
                text="",
                sim_time=d.clock.now,
                gold_intent=turn.intent,
                gold_acts=list(turn.acts),
                gold_slots=[],
                edits=[
                    Edit(perturbation=n, kind=n, start=0, end=0, before="", after="", intensity=i)
                    for n, i in turn.noise
                ],
            )
        )
        d.end_reason = "user_abandoned"

    def _interjection(self, d: LiveDialogue) -> tuple[Outgoing, str] | None:
        """What an impatient user sends while waiting (the clock decides whether it is sent in time)."""
        if d.agenda.interjections >= d.interjection_cap or d.done:
            return None
        d.pending_undo = (d.agenda.save(), d.user_turns)
        item = self._realise(d, self.user.interject(d.agenda), whole=True)[0]
        return item, item.text

    def _discard(self, d: LiveDialogue, item: Outgoing) -> None:
        """The reply came before the interjection was sent: the user never said it, nor drew for it."""
        assert d.pending_undo is not None
        state, d.user_turns = d.pending_undo
        d.agenda.restore(state)
        d.pending_undo = None

    def _drain(self, d: LiveDialogue) -> None:
        """Messages the user had already sent when the assistant ended the dialogue: stored, unanswered."""
        while d.clock.wire.items:
            self._record(d, d.clock.wire.items.pop(0))

    async def assistant_step(self, live: list[LiveDialogue]) -> None:
        """Every live dialogue's assistant answers; failures are kept as data on the dialogue."""
        waiting = [d for d in live if not d.done and d.current is not None]
        if not waiting:
            return
        if isinstance(self.assistant, BatchAssistant):
            started = time.perf_counter()
            try:
                replies = self._batch([(d.thread_id, d.messages) for d in waiting])
            except Exception:
                # One bad conversation must not sink the cohort: retry one by one to find it.
                replies = []
                for d in waiting:
                    try:
                        replies.extend(self._batch([(d.thread_id, d.messages)]))
                    except Exception as exc:
                        replies.append(exc)
            elapsed = (time.perf_counter() - started) * 1000 / len(waiting)
            for d, reply in zip(waiting, replies, strict=True):
                d.pending, d.latency_ms = reply, elapsed
            unclear = [d for d in waiting if self._needs_judge(d)]
            if unclear:
                await asyncio.gather(*(self._judge(d) for d in unclear))
            return
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.cohort)
        await asyncio.gather(*(self._call(d) for d in waiting))

    def _batch(self, requests: list[tuple[str, list[Message]]]) -> list[Reply | BaseException]:
        """One batch call, with each reply checked like any target's (a bad one is that dialogue's error)."""
        assert isinstance(self.assistant, BatchAssistant)
        raw = list(self.assistant.respond_batch(requests))
        if len(raw) != len(requests):
            raise AssistantProtocolError(
                f"respond_batch returned {len(raw)} replies for {len(requests)} conversations"
            )
        replies: list[Reply | BaseException] = []
        for item in raw:
            try:
                replies.append(coerce_reply(item))
            except AssistantProtocolError as exc:
                replies.append(exc)
        return replies

    async def _call(self, d: LiveDialogue) -> None:
        assert self._semaphore is not None
        assert isinstance(self.assistant, Assistant)
        METER.set(d.usage)  # this task's own context: an LLM target's calls are counted on the dialogue
        async with self._semaphore:
            started = time.perf_counter()
            try:
                # asyncio.timeout, not wait_for: in Python 3.11 wait_for can swallow a cancellation that
                # lands as the reply completes, and Ctrl-C would then not stop the run.
                async with asyncio.timeout(self.timeout):
                    d.pending = await self.assistant.respond(list(d.messages), thread_id=d.thread_id)
            except TimeoutError:
                d.pending = AssistantTimeout(f"no reply within {self.timeout:g} s")
            except Exception as exc:  # the assistant under test failed: data, not a crash
                d.pending = exc
            d.latency_ms = (time.perf_counter() - started) * 1000
        if self._needs_judge(d):
            await self._judge(d)

    @staticmethod
    def _needs_judge(d: LiveDialogue) -> bool:
        """A reply needs the judge when it says nothing of a hand-off, or nothing of an intent in a
        dialogue where the bot never exposed one (a bot that does is scored on what it exposes)."""
        reply = d.pending
        return isinstance(reply, Reply) and (
            reply.handoff is None or (reply.intent is None and not d.exposes_intent)
        )

    async def _judge(self, d: LiveDialogue) -> None:
        """The judge's reading of a reply that exposes no intent or hand-off. A failed LLM judge falls
        back on the rules for that reply, and says so in `judged_by`: the bot is not to blame for it."""
        assert isinstance(d.pending, Reply) and self.judge is not None
        METER.set(d.usage)
        messages: list[Message] = [*d.messages, {"role": "assistant", "content": d.pending.text}]
        try:
            d.judged = await self.judge.judge(d.pending.text, messages)
        except Exception as exc:
            ruled = await self._rules.judge(d.pending.text, messages)
            d.judged = replace(ruled, by=f"rules ({self.judge.name} failed: {type(exc).__name__})")

    def observe(self, live: list[LiveDialogue]) -> None:
        """Record every answer at the simulated second it appears, and end dialogues that are over."""
        for d in live:
            if d.done or d.pending is None:
                continue
            reply, d.pending, d.current = d.pending, None, None
            if isinstance(reply, BaseException):
                kind = type(reply).__name__
                d.error = (kind, str(reply) or kind)
                d.turns.append(
                    TurnRecord(
                        turn_idx=len(d.turns),
                        speaker="assistant",
                        text="",
                        sim_time=d.clock.now,
                        latency_ms=d.latency_ms,
                        error_type=kind,
                    )
                )
                d.end_reason = "assistant_error"
                self._drain(d)
                continue
            if d.latency_rng is not None:
                latency = (
                    0.25 + len(reply.text) / 2000 + d.latency_rng.lognormvariate(_LATENCY_MU, _LATENCY_SIGMA)
                )
            else:
                latency = d.latency_ms / 1000
            at = d.clock.reply(latency, partial(self._interjection, d), partial(self._discard, d))
            judged, d.judged = d.judged, None
            source: Literal["exposed", "judged", "policy"] = "exposed"
            handoff = reply.handoff
            if handoff is None:
                assert judged is not None  # the assistant step judged every reply without a flag
                handoff, source = judged.handoff, "judged"
            elif handoff and reply.escalated_by:
                source = "policy"
            intent = reply.intent
            intent_source: Literal["exposed", "judged"] | None = "exposed" if intent is not None else None
            d.exposes_intent = d.exposes_intent or intent is not None
            if intent is None and judged is not None and judged.intent is not None:
                intent, intent_source = judged.intent, "judged"
            judged_by = judged.by if judged is not None and "judged" in (source, intent_source) else None
            d.turns.append(
                TurnRecord(
                    turn_idx=len(d.turns),
                    speaker="assistant",
                    text=reply.text,
                    sim_time=at,
                    intent=intent,
                    intent_source=intent_source,
                    judged_by=judged_by,
                    slots=reply.slots,
                    handoff=handoff,
                    handoff_source=source if handoff else None,
                    escalated_by=reply.escalated_by if handoff else None,
                    confidence=reply.confidence,
                    raw=describe_raw(reply.raw),
                    latency_ms=d.latency_ms,
                )
            )
            d.messages.append({"role": "assistant", "content": reply.text})
            d.last_reply = reply.text
            if handoff:
                d.end_reason = "handoff"
            elif sum(t.speaker == "assistant" for t in d.turns) >= self.max_turns:
                d.end_reason = "max_turns"
            if d.done:
                self._drain(d)

    def flush(self, live: list[LiveDialogue]) -> None:
        """Hand every finished dialogue still in `live` to the sink (the end of a run)."""
        for d in live:
            if d.done:
                self._finish(d)

    def _finish(self, d: LiveDialogue) -> None:
        assert d.end_reason is not None
        # Messages were recorded as the assistant took them; the transcript is in the order they were sent.
        d.turns.sort(key=lambda t: t.sim_time)
        for i, t in enumerate(d.turns):
            t.turn_idx = i
        usage = d.usage
        record, checks = score(
            pack=self.pack,
            run_id=self.run_id,
            job=d.job,
            turns=d.turns,
            end_reason=d.end_reason,
            error=d.error,
            user_requested_human=d.requested_human,
            spec=self.spec,
            policy=self.policy,
        )
        record.llm_calls, record.llm_cached = usage.calls, usage.cached
        record.llm_prompt_tokens, record.llm_completion_tokens = usage.prompt_tokens, usage.completion_tokens
        record.llm_cost_usd = usage.cost_usd
        forget = getattr(self.assistant, "forget", None)
        if forget is not None:
            forget(d.thread_id)
        self.sink((record, d.turns, checks))

    async def run_plain(self) -> None:
        """The same steps in a bare loop, without LangGraph (the benchmark's baseline)."""
        live = self.admit([])
        while live:
            await self.user_step(live)
            await self.assistant_step(live)
            self.observe(live)
            live = self.admit(live)
