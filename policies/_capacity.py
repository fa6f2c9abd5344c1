"""Capacity of the human team behind the bot: a SimPy model of the queue that hand-offs join.

A drill tells us how often, and how late, the bot hands each intent to a person. This module turns that into
the question a contact centre asks: with this many agents on duty, how long do handed-off customers wait,
how many give up, and how many critical ones are answered within their service level? Everything here is
pure and seeded, so the same config and profile give the same report on any machine.

Flow of one customer: contacts the bot (Poisson, per intent, rate multiplied by any surge) -> with the
intent's hand-off rate, reaches the desk `seconds_to_handoff` later -> waits at a pool of agents, critical
customers first (non-preemptive) -> is served, gives up after an exponential patience, or is still waiting
when the last agent goes off duty (`unanswered`).

Example:
    >>> profile = HandoffProfile(intents=[IntentHandoff(intent="lost_card", share=1.0, handoff_rate=1.0)])
    >>> config = CapacityConfig(arrivals_per_hour=20, shift_hours=8, agents=3, seed=1)
    >>> report = simulate_capacity(config, profile)
    >>> report.all.handed_off == report.all.served + report.all.abandoned + report.all.unanswered
    True
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import simpy
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from botdrill.scenarios import Pack

_DAY_S = 24 * 3600.0
_CLOCK = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")
_SURGE = re.compile(
    r"^\s*(?P<intent>[a-z][a-z0-9_]*)\s*:\s*(?P<factor>[-+]?\d+(?:\.\d*)?|[-+]?\.\d+)\s*x?\s*"
    r"@\s*(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s*$"
)
_BLOCKER_PRIORITY = -1
"""Off-duty agents are requests that jump every customer in the queue (see `_roster`)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _clock_seconds(text: str, what: str) -> float:
    """Seconds after midnight of an `HH:MM` clock time (`24:00` allowed as the end of a day)."""
    match = _CLOCK.match(text.strip())
    if match is None or (match.group(1) == "24" and match.group(2) != "00"):
        raise ValueError(f"{what} {text!r} is not a clock time like '09:00'")
    return int(match.group(1)) * 3600.0 + int(match.group(2)) * 60.0


# ------------------------------------------------------------------------------------------------- profile


class IntentHandoff(_Frozen):
    """How one intent loads the human team."""

    intent: str = Field(min_length=1)
    """Intent name, as in the pack."""
    share: float = Field(ge=0, le=1)
    """Share of the customers contacting the bot that come with this intent."""
    handoff_rate: float = Field(ge=0, le=1)
    """Probability that a dialogue of this intent ends with a person."""
    critical: bool = False
    """Critical intents are a priority class of their own, with their own service level."""
    seconds_to_handoff: float = Field(default=0.0, ge=0)
    """Mean seconds the bot spends before handing off. The model uses it as a fixed delay: a run only gives
    the mean, and a spread of a minute or two would only blur the edges of a surge."""


class HandoffProfile(_Frozen):
    """Traffic mix and hand-off behaviour per intent: what the bot sends to the human team.

    Build it from a drill (`from_rows`) to size the team for the bot as it really behaves, or from a pack
    (`from_pack`) as a first guess before any run.
    """

    intents: tuple[IntentHandoff, ...] = Field(min_length=1)
    """One entry per intent; shares sum to 1."""

    @model_validator(mode="after")
    def _check(self) -> HandoffProfile:
        names = [i.intent for i in self.intents]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"intents appear more than once: {', '.join(duplicates)}")
        total = math.fsum(i.share for i in self.intents)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"intent shares must sum to 1, not {total:.6g}")
        return self

    def get(self, intent: str) -> IntentHandoff:
        """The entry for `intent` (KeyError naming the known intents if there is none)."""
        for entry in self.intents:
            if entry.intent == intent:
                return entry
        raise KeyError(f"no intent {intent!r} in the profile (known: {', '.join(self.names)})")

    @property
    def names(self) -> list[str]:
        """Intent names, in profile order."""
        return [i.intent for i in self.intents]

    @classmethod
    def from_rows(
        cls, rows: Iterable[Mapping[str, Any] | Sequence[Any]], *, weights: Mapping[str, float] | None = None
    ) -> HandoffProfile:
        """A profile measured on a drill: one row per intent.

        Args:
            rows: `(intent, critical, dialogues, handed_off, mean_seconds_to_handoff)` tuples, or dicts with
                those keys; `mean_seconds_to_handoff` may be None when nothing of that intent was handed off.
            weights: relative traffic weights per intent, e.g. `{i.name: i.weight for i in pack.intents}`.
                Pass them for a drill sampled with the default over-sampling of critical intents: there
                the dialogue counts say what was drilled, not what real traffic looks like, and would make
                critical hand-offs look many times more common than they are. Without them, shares are the
                dialogue counts.
        """
        keys = ("intent", "critical", "dialogues", "handed_off", "mean_seconds_to_handoff")
        parsed: list[dict[str, Any]] = []
        for number, row in enumerate(rows):
            if isinstance(row, Mapping):
                missing = [k for k in keys if k not in row]
                if missing:
                    raise ValueError(f"row {number} lacks {', '.join(missing)}")
                values = dict(zip(keys, (row[k] for k in keys), strict=True))
            else:
                if len(row) != len(keys):
                    raise ValueError(f"row {number} has {len(row)} fields, expected {len(keys)}: {keys}")
                values = dict(zip(keys, row, strict=True))
            dialogues, handed_off = int(values["dialogues"]), int(values["handed_off"])
            if dialogues <= 0 or not 0 <= handed_off <= dialogues:
                raise ValueError(
                    f"row {number} ({values['intent']}): need dialogues > 0 and 0 <= handed_off <= dialogues,"
                    f" got {dialogues} and {handed_off}"
                )
            seconds = values["mean_seconds_to_handoff"]
            parsed.append({**values, "dialogues": dialogues, "handed_off": handed_off, "seconds": seconds})
        if not parsed:
            raise ValueError("no rows: a profile needs at least one intent")
        if weights is None:
            raw = {str(p["intent"]): float(p["dialogues"]) for p in parsed}
        else:
            unweighted = [str(p["intent"]) for p in parsed if str(p["intent"]) not in weights]
            if unweighted:
                raise ValueError(f"no traffic weight for {', '.join(unweighted)}")
            raw = {str(p["intent"]): float(weights[str(p["intent"])]) for p in parsed}
        total = math.fsum(raw.values())
        if total <= 0:
            raise ValueError("traffic weights must sum to more than 0")
        return cls(
            intents=tuple(
                IntentHandoff(
                    intent=str(p["intent"]),
                    share=raw[str(p["intent"])] / total,
                    handoff_rate=p["handed_off"] / p["dialogues"],
                    critical=bool(p["critical"]),
                    seconds_to_handoff=0.0 if p["seconds"] is None else float(p["seconds"]),
                )
                for p in parsed
            )
        )

    @classmethod
    def from_pack(
        cls,
        pack: Pack,
        handoff_rate_by_escalation: Mapping[str, float] | None = None,
        *,
        seconds_to_handoff: float = 120.0,
    ) -> HandoffProfile:
        """A first guess from a pack alone: shares from intent weights, hand-off rates from escalation.

        Args:
            pack: the pack; every intent, critical ones included, gets the share its `weight` gives it.
            handoff_rate_by_escalation: hand-off probability per escalation expectation; defaults to
                `{"must": 1.0, "may": 0.2, "never": 0.02}` (a `never` intent still reaches a person when the
                customer insists).
            seconds_to_handoff: bot time before a hand-off, the same for every intent (a pack has no timing).
        """
        rates = {"must": 1.0, "may": 0.2, "never": 0.02}
        if handoff_rate_by_escalation is not None:
            rates |= dict(handoff_rate_by_escalation)
        total = math.fsum(i.weight for i in pack.intents)
        return cls(
            intents=tuple(
                IntentHandoff(
                    intent=i.name,
                    share=i.weight / total,
                    handoff_rate=rates[i.escalation.expected],
                    critical=i.critical,
                    seconds_to_handoff=seconds_to_handoff,
                )
                for i in pack.intents
            )
        )


# -------------------------------------------------------------------------------------------------- config


class Surge(_Frozen):
    """A window in which customers of one intent contact the bot `factor` times as often."""

    intent: str = Field(min_length=1)
    """The intent that surges."""
    factor: float = Field(gt=0)
    """Multiplier on the intent's contact rate (below 1 for a lull); overlapping surges multiply."""
    start_s: float = Field(ge=0)
    """Start, in seconds from the start of the shift."""
    end_s: float
    """End, in seconds from the start of the shift."""

    @model_validator(mode="after")
    def _check(self) -> Surge:
        if self.end_s <= self.start_s:
            raise ValueError(
                f"surge of {self.intent} ends ({self.end_s:g} s) before it starts ({self.start_s:g} s)"
            )
        return self


def parse_surge(text: str, shift_start: str = "09:00", shift_hours: float | None = None) -> Surge:
    """A surge from the command line form `intent:FACTORx@HH:MM-HH:MM` (clock times).

    Example:
        >>> parse_surge("report_fraud:10x@13:00-14:00", shift_start="09:00")
        Surge(intent='report_fraud', factor=10.0, start_s=14400.0, end_s=18000.0)

    Args:
        text: the surge; the `x` after the factor is optional.
        shift_start: clock time the shift starts at, which offsets are counted from.
        shift_hours: length of the shift; when given, a surge must end by the end of the shift. A shift that
            runs past midnight takes clock times after midnight as the next day.

    Raises:
        ValueError: saying what is wrong: the format, the factor, the order of the times, or a window
            outside the shift.
    """
    match = _SURGE.match(text)
    if match is None:
        raise ValueError(
            f"surge {text!r} is not in the form intent:FACTORx@HH:MM-HH:MM, e.g. report_fraud:10x@13:00-14:00"
        )
    factor = float(match["factor"])
    if factor <= 0:
        raise ValueError(f"surge {text!r}: the factor must be more than 0, not {factor:g}")
    origin = _clock_seconds(shift_start, "shift start")
    length = None if shift_hours is None else shift_hours * 3600.0

    def offset(clock: str, what: str) -> float:
        seconds = _clock_seconds(clock, f"surge {what} in {text!r}:") - origin
        if seconds < 0 and length is not None and seconds + _DAY_S <= length:
            seconds += _DAY_S
        return seconds

    start, end = offset(match["start"], "start"), offset(match["end"], "end")
    if start < 0:
        raise ValueError(
            f"surge {text!r} starts at {match['start']}, before the shift starts at {shift_start}"
        )
    if end <= start:
        raise ValueError(f"surge {text!r} ends at {match['end']}, not after it starts at {match['start']}")
    if length is not None and end > length:
        raise ValueError(
            f"surge {text!r} ends at {match['end']}, "
            f"after the {shift_hours:g} h shift from {shift_start} ends"
        )
    return Surge(intent=match["intent"], factor=factor, start_s=start, end_s=end)


class AgentShift(_Frozen):
    """`count` agents on duty from `start_s` to `end_s` (seconds from the start of the shift).

    An agent still serving a customer at `end_s` finishes that customer first; nobody new is taken on.
    Also accepted as a `(count, start_s, end_s)` tuple.
    """

    count: int = Field(ge=1)
    """Agents on this shift."""
    start_s: float = Field(ge=0)
    """When they come on duty."""
    end_s: float
    """When they stop taking customers."""

    @model_validator(mode="before")
    @classmethod
    def _from_tuple(cls, data: Any) -> Any:
        if isinstance(data, list | tuple):
            if len(data) != 3:
                raise ValueError(f"an agent shift is (count, start_s, end_s), got {len(data)} values")
            return {"count": data[0], "start_s": data[1], "end_s": data[2]}
        return data

    @model_validator(mode="after")
    def _check(self) -> AgentShift:
        if self.end_s <= self.start_s:
            raise ValueError(f"agent shift ends ({self.end_s:g} s) before it starts ({self.start_s:g} s)")
        return self


class ByClass(_Frozen):
    """A value for critical hand-offs and one for the rest; a single number means both."""

    critical: float = Field(gt=0)
    """For hand-offs of critical intents."""
    normal: float = Field(gt=0)
    """For all other hand-offs."""

    @model_validator(mode="before")
    @classmethod
    def _from_number(cls, data: Any) -> Any:
        if isinstance(data, int | float) and not isinstance(data, bool):
            return {"critical": data, "normal": data}
        return data

    def of(self, critical: bool) -> float:
        """The value for the class."""
        return self.critical if critical else self.normal


class CapacityConfig(BaseModel):
    """The human team and the day it faces.

    `agents` as a number means that many agents for the whole shift; as a list of `AgentShift`s (or
    `(count, start_s, end_s)` tuples) it is a roster, and nobody is on duty outside it. Customers still
    waiting when the last agent goes off duty are reported as `unanswered`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    arrivals_per_hour: float = Field(ge=0)
    """Customers contacting the bot per hour, all intents together, before surges."""
    shift_hours: float = Field(default=8.0, gt=0)
    """How long customers keep arriving; also the window that utilisation is measured over."""
    shift_start: str = "09:00"
    """Clock time of the start of the shift, for reading surges given as clock times."""
    agents: int | list[AgentShift] = 1
    """Agents on duty for the whole shift, or a roster."""
    handling_minutes: ByClass = Field(default_factory=lambda: ByClass(critical=12.0, normal=6.0))
    """Mean minutes an agent spends on a customer, per class."""
    service: Literal["exponential", "lognormal"] = "exponential"
    """Distribution of handling times. Lognormal, with `service_cv`, is closer to real handling times; the
    exponential is what Erlang C assumes."""
    service_cv: float = Field(default=1.0, gt=0)
    """Coefficient of variation of lognormal handling times (ignored for the exponential, whose cv is 1)."""
    patience_minutes: float | None = Field(default=None, gt=0)
    """Mean of an exponential time after which a waiting customer gives up; None: nobody gives up."""
    critical_priority: bool = True
    """Serve waiting critical hand-offs before the rest (non-preemptive: a call in progress is finished)."""
    sla_seconds_critical: float = Field(default=60.0, gt=0)
    """A critical hand-off breaches its service level if it waits longer, gives up, or is unanswered."""
    sla_seconds_normal: float = Field(default=300.0, gt=0)
    """The same for the other hand-offs."""
    surges: list[Surge] = Field(default_factory=list)
    """Windows of extra (or less) traffic per intent; clock-time strings are parsed with `parse_surge`."""
    seed: int = 0
    """Seed of every random draw; the same config and profile give the same report."""
    warmup_minutes: float = Field(default=0.0, ge=0)
    """Customers contacting the bot before this are simulated but not counted, nor is agent time, so a
    model that starts empty can be measured in its steady state."""

    @field_validator("shift_start")
    @classmethod
    def _check_clock(cls, value: str) -> str:
        _clock_seconds(value, "shift_start")
        return value

    @field_validator("agents", mode="before")
    @classmethod
    def _check_agents(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and value < 1:
            raise ValueError(f"agents must be at least 1, not {value}")
        if isinstance(value, list) and not value:
            raise ValueError("an agent roster needs at least one shift")
        return value

    @model_validator(mode="before")
    @classmethod
    def _parse_surges(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("surges"), list):
            start = data.get("shift_start", "09:00")
            try:
                hours = float(data.get("shift_hours", 8.0))
            except (TypeError, ValueError):
                return data  # the field's own check reports the bad shift length
            data = {
                **data,
                "surges": [parse_surge(s, start, hours) if isinstance(s, str) else s for s in data["surges"]],
            }
        return data

    @model_validator(mode="after")
    def _check(self) -> CapacityConfig:
        if self.warmup_minutes * 60 >= self.shift_s:
            raise ValueError(f"warmup ({self.warmup_minutes:g} min) must end before the shift does")
        for surge in self.surges:
            if surge.end_s > self.shift_s:
                raise ValueError(
                    f"surge of {surge.intent} ends at {surge.end_s:g} s, after the shift ({self.shift_s:g} s)"
                )
        return self

    @property
    def shift_s(self) -> float:
        """Length of the shift in seconds."""
        return self.shift_hours * 3600.0

    @property
    def roster(self) -> list[AgentShift]:
        """The agents as a roster (a number of agents is one shift covering the whole day)."""
        if isinstance(self.agents, int):
            return [AgentShift(count=self.agents, start_s=0.0, end_s=self.shift_s)]
        return list(self.agents)


# -------------------------------------------------------------------------------------------------- report


class ScopeStats(_Frozen):
    """What happened to the hand-offs of one scope: all, a class, or one intent."""

    scope: str
    """`all`, `critical`, `normal` or `intent:<name>`."""
    contacts: int
    """Customers who contacted the bot."""
    handed_off: int
    """Of those, customers the bot handed to the team."""
    served: int
    """Handed-off customers an agent took on."""
    abandoned: int
    """Handed-off customers who gave up waiting."""
    unanswered: int
    """Handed-off customers still waiting when the last agent went off duty."""
    abandonment_rate: float | None
    """`abandoned / handed_off` (None with no hand-offs)."""
    wait_mean_s: float | None
    """Mean seconds from hand-off to an agent, over served customers (None if none were served)."""
    wait_p50_s: float | None
    """Median of those waits."""
    wait_p90_s: float | None
    """90th percentile of those waits."""
    wait_p99_s: float | None
    """99th percentile of those waits."""
    sla_breaches: int
    """Hand-offs served after their class's service level, abandoned, or unanswered."""
    sla_breach_rate: float | None
    """`sla_breaches / handed_off` (None with no hand-offs)."""


class CapacityReport(_Frozen):
    """The outcome of one simulated shift, per scope, with the team's utilisation."""

    version: int = 1
    """Layout of the report; bumped when fields change meaning."""
    all: ScopeStats
    """Every hand-off."""
    critical: ScopeStats
    """Hand-offs of critical intents."""
    normal: ScopeStats
    """The other hand-offs."""
    intents: dict[str, ScopeStats]
    """Per intent, in profile order."""
    utilisation: float | None
    """Busy agent-seconds over on-duty agent-seconds within the measured window (None if nobody was on duty).
    An agent finishing a call after going off duty counts as on duty while doing so."""
    agent_seconds_busy: float
    """Agent-seconds spent with customers within the window."""
    agent_seconds_available: float
    """Agent-seconds on duty within the window."""
    window_s: tuple[float, float]
    """The measured window: from the end of warmup to the end of the shift, in seconds."""

    def scopes(self) -> list[ScopeStats]:
        """Every scope: all, critical, normal, then the intents."""
        return [self.all, self.critical, self.normal, *self.intents.values()]

    def to_rows(self) -> list[dict[str, Any]]:
        """One flat dict per scope with the same keys, for a table; utilisation is on the `all` row only."""
        rows = []
        for stats in self.scopes():
            row = stats.model_dump()
            row["utilisation"] = self.utilisation if stats.scope == "all" else None
            rows.append(row)
        return rows

    def summary_lines(self) -> list[str]:
        """A few lines for a terminal."""
        lines = []
        for stats in (self.all, self.critical, self.normal):
            if stats.handed_off == 0:
                lines.append(f"{stats.scope}: no hand-offs")
                continue
            waits = (
                "nobody served"
                if stats.wait_mean_s is None
                else f"wait mean {stats.wait_mean_s:.0f}s, p50 {stats.wait_p50_s:.0f}s, "
                f"p90 {stats.wait_p90_s:.0f}s, p99 {stats.wait_p99_s:.0f}s"
            )
            lines.append(
                f"{stats.scope}: {stats.handed_off} handed off, {stats.served} served, "
                f"{stats.abandoned} gave up ({stats.abandonment_rate or 0:.1%}), "
                f"{stats.unanswered} unanswered; {waits}; "
                f"SLA breaches {stats.sla_breaches} ({stats.sla_breach_rate or 0:.1%})"
            )
        if self.utilisation is not None:
            lines.append(f"agent utilisation {self.utilisation:.0%}")
        return lines


# -------------------------------------------------------------------------------------------------- models


def erlang_c_wait(arrival_rate: float, service_rate: float, servers: int) -> float:
    """Mean wait in queue of an M/M/c queue (Erlang C), in the time unit of the rates.

    Returns `inf` when the servers cannot keep up (`arrival_rate >= servers * service_rate`).

    Example:
        >>> round(erlang_c_wait(20, 10, 3) * 3600)  # 20 an hour, 6 minutes each, 3 agents: seconds
        160
    """
    if arrival_rate < 0 or service_rate <= 0 or servers < 1:
        raise ValueError("need arrival_rate >= 0, service_rate > 0 and servers >= 1")
    if arrival_rate == 0:
        return 0.0
    load = arrival_rate / service_rate
    rho = load / servers
    if rho >= 1:
        return math.inf
    blocking = 1.0  # Erlang B by its recurrence, which stays finite where factorials overflow
    for k in range(1, servers + 1):
        blocking = load * blocking / (k + load * blocking)
    waiting = blocking / (1 - rho * (1 - blocking))
    return waiting / (servers * service_rate - arrival_rate)


@dataclass
class _Customers:
    """Every simulated customer, as parallel arrays, with what happened to them filled in by the run."""

    intent: np.ndarray[Any, np.dtype[np.int64]]
    contact_s: np.ndarray[Any, np.dtype[np.float64]]
    handed_off: np.ndarray[Any, np.dtype[np.bool_]]
    handoff_s: np.ndarray[Any, np.dtype[np.float64]]
    service_s: np.ndarray[Any, np.dtype[np.float64]]
    patience_s: np.ndarray[Any, np.dtype[np.float64]]


def _draw_customers(config: CapacityConfig, profile: HandoffProfile) -> _Customers:
    """All customers of the day, drawn up front, from four streams per intent.

    Drawing everything before the queue runs keeps each customer's hand-off, handling time and patience
    independent of the queue, and two configs that differ only in the team (agents, priority) see exactly
    the same customers: their difference is the team's, not the dice's. Arrivals come from a unit-rate
    Poisson process mapped through the integrated rate, and each attribute has its own stream, so a surge
    leaves the customers before it, and every other intent's customers, exactly as they were.
    """
    names = set(profile.names)
    for surge in config.surges:
        if surge.intent not in names:
            raise ValueError(
                f"surge of {surge.intent!r}, which is not in the profile ({', '.join(sorted(names))})"
            )
    base = config.arrivals_per_hour / 3600.0
    parts: list[tuple[np.ndarray[Any, Any], ...]] = []
    for index, (entry, seeds) in enumerate(
        zip(profile.intents, np.random.SeedSequence(config.seed).spawn(len(profile.intents)), strict=True)
    ):
        arrivals, handoffs, handling, patience = (np.random.default_rng(s) for s in seeds.spawn(4))
        surges = [s for s in config.surges if s.intent == entry.intent]
        cuts = np.array(sorted({0.0, config.shift_s, *(t for s in surges for t in (s.start_s, s.end_s))}))
        rates = np.array(
            [
                base * entry.share * math.prod(s.factor for s in surges if s.start_s <= a and b <= s.end_s)
                for a, b in itertools.pairwise(cuts.tolist())
            ]
        )
        integrated = np.concatenate([[0.0], np.cumsum(rates * np.diff(cuts))])
        contact = _unit_poisson(arrivals, float(integrated[-1]))
        piece = np.searchsorted(integrated, contact, side="right") - 1
        contact = cuts[piece] + (contact - integrated[piece]) / rates[piece] if len(contact) else contact
        n = len(contact)
        mean_s = config.handling_minutes.of(entry.critical) * 60.0
        if config.service == "exponential":
            service = handling.exponential(mean_s, n)
        else:
            sigma2 = math.log1p(config.service_cv**2)
            service = handling.lognormal(math.log(mean_s) - sigma2 / 2, math.sqrt(sigma2), n)
        waits_for = (
            np.full(n, np.inf)
            if config.patience_minutes is None
            else patience.exponential(config.patience_minutes * 60.0, n)
        )
        parts.append(
            (
                np.full(n, index),
                contact,
                handoffs.random(n) < entry.handoff_rate,
                contact + entry.seconds_to_handoff,
                service,
                waits_for,
            )
        )
    columns = [np.concatenate(c) for c in zip(*parts, strict=True)]
    return _Customers(
        intent=columns[0].astype(np.int64),
        contact_s=columns[1].astype(np.float64),
        handed_off=columns[2].astype(np.bool_),
        handoff_s=columns[3].astype(np.float64),
        service_s=columns[4].astype(np.float64),
        patience_s=columns[5].astype(np.float64),
    )


def _unit_poisson(rng: np.random.Generator, horizon: float) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Points of a rate-1 Poisson process on `[0, horizon)`, from gaps drawn in fixed-size chunks.

    Fixed chunks make the first points the same whatever the horizon, which is what keeps the customers
    before a surge unchanged by it.
    """
    chunks: list[np.ndarray[Any, np.dtype[np.float64]]] = []
    last = 0.0
    while last < horizon:
        points = last + np.cumsum(rng.standard_exponential(4096))
        chunks.append(points)
        last = float(points[-1])
    points = np.concatenate(chunks) if chunks else np.zeros(0)
    return points[points < horizon]


def _duty_changes(roster: list[AgentShift]) -> list[tuple[float, int]]:
    """`(time, agents on duty from then on)` at every change of the roster, starting at 0."""
    points = sorted({0.0, *(t for shift in roster for t in (shift.start_s, shift.end_s))})
    changes: list[tuple[float, int]] = []
    for t in points:
        on_duty = sum(s.count for s in roster if s.start_s <= t < s.end_s)
        if not changes or changes[-1][1] != on_duty:
            changes.append((t, on_duty))
    return changes


def _mark_taken(env: simpy.Environment, seat: list[float]) -> Callable[[simpy.Event], None]:
    """A callback that notes when an off-duty agent's seat is taken."""

    def mark(_event: simpy.Event) -> None:
        seat[0] = min(seat[0], env.now)

    return mark


def _roster(
    env: simpy.Environment,
    desk: simpy.PriorityResource,
    changes: list[tuple[float, int]],
    off_duty: list[list[float]],
) -> Generator[simpy.Event, Any, None]:
    """Keep `capacity - on duty` seats of the desk taken by off-duty agents.

    An agent going off duty is a request that jumps every waiting customer but, like everything on this
    desk, waits for a call in progress to end: the agent finishes the call, then leaves. `off_duty` gets
    `[from, until]` for each seat so taken, for the utilisation.
    """
    capacity = int(desk.capacity)
    blockers: list[tuple[simpy.resources.resource.PriorityRequest, list[float]]] = []
    for t, on_duty in changes:
        if t > env.now:
            yield env.timeout(t - env.now)
        surplus = len(blockers) - (capacity - on_duty)
        if surplus > 0:
            # Agents coming on duty: first keep on those who have not left yet, then bring back others.
            blockers.sort(key=lambda b: b[0].triggered)
            for request, seat in blockers[:surplus]:
                if request.triggered:
                    desk.release(request)
                    seat[0] = min(seat[0], env.now)
                    seat[1] = env.now
                else:
                    request.cancel()
            del blockers[:surplus]
        for _ in range(-surplus):
            seat = [math.inf, math.inf]
            request = desk.request(priority=_BLOCKER_PRIORITY)
            request.callbacks.append(_mark_taken(env, seat))
            blockers.append((request, seat))
            off_duty.append(seat)


def _customer(
    env: simpy.Environment,
    desk: simpy.PriorityResource,
    index: int,
    priority: int,
    service_s: float,
    patience_s: float,
    start: list[float],
    gave_up: list[bool],
) -> Generator[simpy.Event, Any, None]:
    """One handed-off customer: wait for an agent or give up, then hold the agent for the handling time."""
    request = desk.request(priority=priority)
    if math.isinf(patience_s):
        yield request
    else:
        yield request | env.timeout(patience_s)
        if not request.triggered:
            request.cancel()
            gave_up[index] = True
            return
    start[index] = env.now
    yield env.timeout(service_s)
    desk.release(request)


def _overlap(start: np.ndarray[Any, Any], end: np.ndarray[Any, Any], lo: float, hi: float) -> float:
    """Total length of the intervals `[start, end)` within `[lo, hi)`."""
    if len(start) == 0:
        return 0.0
    return float(np.clip(np.minimum(end, hi) - np.maximum(start, lo), 0, None).sum())


def simulate_capacity(config: CapacityConfig, profile: HandoffProfile) -> CapacityReport:
    """Simulate one shift of the human team receiving the bot's hand-offs.

    Customers contact the bot as a Poisson process per intent whose rate is `arrivals_per_hour * share`,
    multiplied inside surges. With its intent's hand-off rate a customer reaches the desk
    `seconds_to_handoff` later and joins one queue for all agents (critical first when `critical_priority`),
    to be served, give up, or be left unanswered when the last agent goes off duty. The run goes on after
    the shift until every hand-off is resolved, so late hand-offs are counted too.

    Raises:
        ValueError: if a surge names an intent the profile does not have.
    """
    customers = _draw_customers(config, profile)
    critical = np.array([e.critical for e in profile.intents], dtype=bool)
    is_critical = critical[customers.intent] if len(customers.intent) else np.zeros(0, dtype=bool)
    roster = config.roster
    changes = _duty_changes(roster)
    capacity = max(on_duty for _, on_duty in changes)

    env = simpy.Environment()
    desk = simpy.PriorityResource(env, capacity=capacity)
    off_duty: list[list[float]] = []
    env.process(_roster(env, desk, changes, off_duty))

    queued = np.flatnonzero(customers.handed_off)
    queued = queued[np.argsort(customers.handoff_s[queued], kind="stable")]
    n = len(customers.intent)
    start = [math.nan] * n
    gave_up = [False] * n
    priorities = np.where(is_critical & config.critical_priority, 0, 1)

    def arrivals() -> Generator[simpy.Event, Any, None]:
        for i in queued.tolist():
            at = float(customers.handoff_s[i])
            if at > env.now:
                yield env.timeout(at - env.now)
            env.process(
                _customer(
                    env,
                    desk,
                    i,
                    int(priorities[i]),
                    float(customers.service_s[i]),
                    float(customers.patience_s[i]),
                    start,
                    gave_up,
                )
            )

    env.process(arrivals())
    env.run()

    started = np.array(start, dtype=np.float64)
    served = ~np.isnan(started)
    abandoned = np.array(gave_up, dtype=bool)
    unanswered = customers.handed_off & ~served & ~abandoned
    wait = np.where(served, started - customers.handoff_s, np.nan)
    sla = np.where(is_critical, config.sla_seconds_critical, config.sla_seconds_normal)
    breach = customers.handed_off & (abandoned | unanswered | (served & (wait > sla)))
    warmup_s = config.warmup_minutes * 60.0
    counted = customers.contact_s >= warmup_s

    def stats(scope: str, mask: np.ndarray[Any, np.dtype[np.bool_]]) -> ScopeStats:
        mask = mask & counted
        handed = int((mask & customers.handed_off).sum())
        waits = wait[mask & served]
        percentiles = np.percentile(waits, [50, 90, 99]) if len(waits) else None
        gave = int((mask & abandoned).sum())
        breaches = int((mask & breach).sum())
        return ScopeStats(
            scope=scope,
            contacts=int(mask.sum()),
            handed_off=handed,
            served=len(waits),
            abandoned=gave,
            unanswered=int((mask & unanswered).sum()),
            abandonment_rate=gave / handed if handed else None,
            wait_mean_s=float(waits.mean()) if len(waits) else None,
            wait_p50_s=None if percentiles is None else float(percentiles[0]),
            wait_p90_s=None if percentiles is None else float(percentiles[1]),
            wait_p99_s=None if percentiles is None else float(percentiles[2]),
            sla_breaches=breaches,
            sla_breach_rate=breaches / handed if handed else None,
        )

    everyone = np.ones(n, dtype=bool)
    window = (warmup_s, config.shift_s)
    busy = _overlap(started[served], started[served] + customers.service_s[served], *window)
    seats = np.array(off_duty, dtype=np.float64).reshape(-1, 2)
    available = capacity * (window[1] - window[0]) - _overlap(seats[:, 0], seats[:, 1], *window)
    return CapacityReport(
        all=stats("all", everyone),
        critical=stats("critical", is_critical),
        normal=stats("normal", ~is_critical),
        intents={
            e.intent: stats(f"intent:{e.intent}", customers.intent == i)
            for i, e in enumerate(profile.intents)
        },
        utilisation=busy / available if available > 0 else None,
        agent_seconds_busy=busy,
        agent_seconds_available=available,
        window_s=window,
    )
