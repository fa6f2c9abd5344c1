"""The work of a dialogue step, done for a whole cohort of live dialogues at once.

Each step function takes the list of live dialogues and advances every one of them: the user speaks, the
assistant answers (one batch call for a batch assistant, `asyncio.gather` under a semaphore otherwise),
the answer is observed and checked for an end. Finished dialogues are scored and handed to a sink; new ones
join from the source. The LangGraph graph (`_graph.py`) wires these functions as nodes; the same functions
in a bare loop (`run_plain`) give the baseline the benchmark compares with.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from botdrill.agents import Agenda, AgendaUser, Message, Reply
from botdrill.agents._adapters import (
    Assistant,
    AssistantProtocolError,
    AssistantTimeout,
    BatchAssistant,
    coerce_reply,
    describe_raw,
)
from botdrill.agents._judge import judge_handoff
from botdrill.scenarios import Pack, Scenario

from ._records import DialogueRecord, EndReason, SlotCheck, TurnRecord
from ._scoring import score

_READING_CPS = 25.0  # characters per second a user reads


@dataclass
class LiveDialogue:
    """Everything about one dialogue in flight."""

    scenario: Scenario
    agenda: Agenda
    thread_id: str
    messages: list[Message] = field(default_factory=list)
    turns: list[TurnRecord] = field(default_factory=list)
    clock: float = 0.0
    last_reply: str | None = None
    end_reason: EndReason | None = None
    error: tuple[str, str] | None = None
    requested_human: bool = False
    pending: Reply | BaseException | None = None
    latency_ms: float = 0.0

    @property
    def done(self) -> bool:
        return self.end_reason is not None


Finished = tuple[DialogueRecord, list[TurnRecord], list[SlotCheck]]


@dataclass
class Engine:
    """One run's moving parts: the pack, the user simulator, the assistant, and where results go.

    Args:
        pack: scenario pack.
        run_id: the run's id, used in dialogue ids.
        assistant: the assistant under test.
        source: scenarios still to simulate, in order.
        sink: receives each finished, scored dialogue.
        cohort: how many dialogues are in flight at once.
        max_turns: assistant turns after which a dialogue stops.
        timeout: seconds an assistant may take for one reply.
        modelled_latency: use a deterministic latency model for the simulated clock (for the built-in bot,
            whose real latency is a batch artefact) instead of the measured one.
    """

    pack: Pack
    run_id: str
    assistant: Assistant | BatchAssistant
    source: Iterator[Scenario]
    sink: Callable[[Finished], None]
    cohort: int = 256
    max_turns: int = 12
    timeout: float = 30.0
    modelled_latency: bool = False
    user: AgendaUser = field(init=False)
    _semaphore: asyncio.Semaphore | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.user = AgendaUser(self.pack)

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
            scenario = next(self.source, None)
            if scenario is None:
                break
            still.append(
                LiveDialogue(
                    scenario=scenario,
                    agenda=self.user.start(scenario),
                    thread_id=f"{self.run_id}-{scenario.index:06d}",
                )
            )
        return still

    def user_step(self, live: list[LiveDialogue]) -> None:
        """Every live dialogue's user says its next message."""
        for d in live:
            if d.done:
                continue
            turn = self.user.next_turn(d.agenda, d.last_reply)
            d.clock += 1.0 + len(turn.text) / d.scenario.persona.typing_cps
            d.turns.append(
                TurnRecord(
                    turn_idx=len(d.turns),
                    speaker="user",
                    text=turn.text,
                    sim_time=d.clock,
                    gold_intent=turn.intent,
                    gold_acts=list(turn.acts),
                    gold_slots=list(turn.slots),
                )
            )
            d.messages.append({"role": "user", "content": turn.text})
            if "request_human" in turn.acts:
                d.requested_human = True
            if "give_up" in turn.acts:
                d.end_reason = "user_gave_up"
            elif "goodbye" in turn.acts:
                d.end_reason = "user_done"

    async def assistant_step(self, live: list[LiveDialogue]) -> None:
        """Every live dialogue's assistant answers; failures are kept as data on the dialogue."""
        waiting = [d for d in live if not d.done]
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
        async with self._semaphore:
            started = time.perf_counter()
            try:
                d.pending = await asyncio.wait_for(
                    self.assistant.respond(list(d.messages), thread_id=d.thread_id), self.timeout
                )
            except TimeoutError:
                d.pending = AssistantTimeout(f"no reply within {self.timeout:g} s")
            except Exception as exc:  # the assistant under test failed: data, not a crash
                d.pending = exc
            d.latency_ms = (time.perf_counter() - started) * 1000

    def observe(self, live: list[LiveDialogue]) -> None:
        """Record every answer, detect hand-offs and errors, and end dialogues that are over."""
        for d in live:
            if d.done or d.pending is None:
                continue
            reply, d.pending = d.pending, None
            if isinstance(reply, BaseException):
                kind = type(reply).__name__
                d.error = (kind, str(reply) or kind)
                d.turns.append(
                    TurnRecord(
                        turn_idx=len(d.turns),
                        speaker="assistant",
                        text="",
                        sim_time=d.clock,
                        latency_ms=d.latency_ms,
                        error_type=kind,
                    )
                )
                d.end_reason = "assistant_error"
                continue
            latency = 0.3 + len(reply.text) / 2000 if self.modelled_latency else d.latency_ms / 1000
            d.clock += latency
            source: Literal["exposed", "judged"] = "exposed"
            handoff = reply.handoff
            if handoff is None:
                handoff, source = judge_handoff(reply.text), "judged"
            d.turns.append(
                TurnRecord(
                    turn_idx=len(d.turns),
                    speaker="assistant",
                    text=reply.text,
                    sim_time=d.clock,
                    intent=reply.intent,
                    slots=reply.slots,
                    handoff=handoff,
                    handoff_source=source if handoff else None,
                    raw=describe_raw(reply.raw),
                    latency_ms=d.latency_ms,
                )
            )
            d.messages.append({"role": "assistant", "content": reply.text})
            d.last_reply = reply.text
            d.clock += len(reply.text) / _READING_CPS
            if handoff:
                d.end_reason = "handoff"
            elif sum(t.speaker == "assistant" for t in d.turns) >= self.max_turns:
                d.end_reason = "max_turns"

    def flush(self, live: list[LiveDialogue]) -> None:
        """Hand every finished dialogue still in `live` to the sink (the end of a run)."""
        for d in live:
            if d.done:
                self._finish(d)

    def _finish(self, d: LiveDialogue) -> None:
        assert d.end_reason is not None
        record, checks = score(
            pack=self.pack,
            run_id=self.run_id,
            scenario=d.scenario,
            turns=d.turns,
            end_reason=d.end_reason,
            error=d.error,
            user_requested_human=d.requested_human,
        )
        forget = getattr(self.assistant, "forget", None)
        if forget is not None:
            forget(d.thread_id)
        self.sink((record, d.turns, checks))

    async def run_plain(self) -> None:
        """The same steps in a bare loop, without LangGraph (the benchmark's baseline)."""
        live = self.admit([])
        while live:
            self.user_step(live)
            await self.assistant_step(live)
            self.observe(live)
            live = self.admit(live)
