"""The simulated clock of one dialogue: a SimPy model of a person typing and an assistant answering.

Each dialogue has its own `simpy.Environment` with two parties:

- the **user**, a process that types the messages of a turn one after another (thinking first, then
  typing at the persona's speed) and puts each on the wire when it is sent;
- the **assistant**, which takes messages off the wire in the order they arrived and answers each after
  its latency (measured for a real target, modelled for the built-in bot).

The engine drives the model from outside, because the assistant's words and latency only exist once the
real target has been called: `next_message` runs the clock until a message is on the wire, `reply` runs it
until the answer arrives. While the user waits with nothing left to type, a patience timer races the reply;
if it fires first, the user starts typing again (a double text or a barge-in), and if that message is sent
before the reply arrives it goes on the wire ahead of it. So whether a user interrupts is decided by the
clock (latency against patience against typing speed), never by a coin flip.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import simpy

T = TypeVar("T")

_FRAGMENT_PAUSE_S = 0.4  # a breath between two messages of one turn


@dataclass(frozen=True)
class Sent(Generic[T]):
    """A user message on the wire."""

    item: T
    """Whatever the engine queued (the message and its labels)."""
    at: float
    """Simulated second it was sent."""


class DialogueClock(Generic[T]):
    """Simulated time for one dialogue (see the module docstring).

    Args:
        typing_cps: the user's typing (or speaking) speed, characters per second.
        think_s: seconds between reading a reply and starting to type.
        reading_cps: the user's reading speed for the assistant's messages.
        wait_s: seconds the user waits for a reply, with nothing else to say, before texting again;
            `None` never interrupts.
    """

    def __init__(
        self, *, typing_cps: float, think_s: float, reading_cps: float, wait_s: float | None
    ) -> None:
        self.env = simpy.Environment()
        self.wire: simpy.Store = simpy.Store(self.env)
        self.typing_cps = typing_cps
        self.think_s = think_s
        self.reading_cps = reading_cps
        self.wait_s = wait_s
        self._typing = 0  # messages queued but not yet sent

    @property
    def now(self) -> float:
        """The current simulated second."""
        return float(self.env.now)

    def typing_time(self, text: str) -> float:
        """Seconds it takes this user to type (or say) `text`."""
        return len(text) / self.typing_cps

    def type_turn(self, items: list[T], texts: list[str], *, after_reading: str | None) -> None:
        """Queue a turn: read the last reply (if any), think, then type and send each message in order."""
        read = len(after_reading) / self.reading_cps if after_reading else 0.0
        self._typing += len(items)
        self.env.process(self._type(items, texts, read))

    def _type(self, items: list[T], texts: list[str], read: float) -> Any:
        yield self.env.timeout(read + self.think_s)
        for i, (item, text) in enumerate(zip(items, texts, strict=True)):
            yield self.env.timeout((_FRAGMENT_PAUSE_S if i else 0.0) + self.typing_time(text))
            self._typing -= 1
            yield self.wire.put(Sent(item, self.now))

    @property
    def queued(self) -> int:
        """Messages on the wire or still being typed."""
        return len(self.wire.items) + self._typing

    def next_message(self) -> Sent[T]:
        """Run the clock until the assistant has a message to take; take it.

        Raises:
            RuntimeError: nothing is queued (an engine bug, not a user error).
        """
        if not self.queued:
            raise RuntimeError("the assistant waits for a message that nobody is typing")
        if self.wire.items:  # already sent: take it without scheduling a get (the wire is unbounded)
            sent = self.wire.items.pop(0)
            assert isinstance(sent, Sent)
            return sent
        get = self.wire.get()
        self.env.run(until=get)
        sent = get.value
        assert isinstance(sent, Sent)
        return sent

    def reply(
        self,
        latency: float,
        interject: Callable[[], tuple[T, str] | None] | None = None,
        discard: Callable[[T], None] | None = None,
    ) -> float:
        """The assistant answers after `latency` seconds; returns the simulated second it appears.

        Args:
            latency: seconds from taking the message to the answer appearing.
            interject: composes what an impatient user sends if the wait outlasts its patience (the item
                and its text, or `None` if this user will not interrupt again). The message goes on the
                wire only if it is sent before the reply; a user still typing other messages never
                interrupts.
            discard: told about an interjection the reply overtook (so the user can forget saying it).
        """
        answer = self.env.timeout(max(0.0, latency))
        if interject is not None and self.wait_s is not None and not self.queued:
            self.env.process(self._impatient(answer, interject, discard))
        self.env.run(until=answer)
        # Settle what happens at the same instant (a user who sees the reply drops what it was typing).
        while self.env.peek() == self.now:
            self.env.step()
        return self.now

    def _impatient(
        self,
        answer: simpy.Event,
        interject: Callable[[], tuple[T, str] | None],
        discard: Callable[[T], None] | None,
    ) -> Any:
        assert self.wait_s is not None
        first = yield answer | self.env.timeout(self.wait_s)
        if answer in first:
            return
        composed = interject()
        if composed is None:
            return
        item, text = composed
        typed = self.env.timeout(self.typing_time(text))
        first = yield answer | typed
        if answer in first:  # the reply came first: the user reads it instead of sending
            if discard is not None:
                discard(item)
            return
        yield self.wire.put(Sent(item, self.now))
