"""Variants of a scenario: clean, or with perturbations, for paired runs.

Every sampled scenario runs once clean and once per variant, with the same persona, goal and seed, so the
only difference between a pair's dialogues is the perturbation (and whatever the assistant does about it).
A variant is written `name[:intensity]`, and several perturbations chain with `+`: `typo:3`,
`filler+casing`. The default intensity is 2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from botdrill.agents import get_perturbation, perturbations
from botdrill.scenarios import BotdrillError, Scenario

DEFAULT_INTENSITY = 2
DEFAULT_PERTURBATIONS = ("typo", "filler", "self_correction", "fragments", "casing", "barge_in")
"""What `botdrill run` drills by default: one typing slip family, two disfluencies, split messages, lost
casing and punctuation, and an impatient user who talks over a slow assistant."""

_ITEM = re.compile(r"^([a-z_]+)(?::([0-3]))?$")


class PerturbationSpecError(BotdrillError):
    """A `--perturb` list names an unknown perturbation or a bad intensity."""

    code = "bad_perturbation"


@dataclass(frozen=True)
class Variant:
    """One way of running a scenario."""

    name: str
    """`none` for the clean run, else the perturbations as written (`typo:2`, `filler:2+casing:2`)."""
    chain: tuple[tuple[str, int], ...] = ()
    """Perturbations and intensities, in the order they apply."""

    @property
    def clean(self) -> bool:
        return not self.chain

    @property
    def perturbation(self) -> str:
        """The perturbation names without intensities (`none`, `typo`, `filler+casing`)."""
        return "+".join(n for n, _ in self.chain) or "none"

    @property
    def intensity(self) -> int:
        """The highest intensity in the chain (0 for the clean run)."""
        return max((i for _, i in self.chain), default=0)

    @cached_property
    def dialogue_noise(self) -> dict[str, int]:
        """The chain's dialogue-level perturbations (acted out by the user and the clock)."""
        return {n: i for n, i in self.chain if get_perturbation(n).level == "dialogue"}

    @cached_property
    def text_chain(self) -> tuple[tuple[str, int], ...]:
        """The chain's text-level perturbations (applied to every user message)."""
        return tuple((n, i) for n, i in self.chain if get_perturbation(n).level == "text")


CLEAN = Variant("none")


def parse_variants(spec: str | list[str] | tuple[str, ...] | None) -> list[Variant]:
    """The clean variant followed by one per item of `spec`.

    Args:
        spec: comma-separated items (or a list of them); `none` or an empty list runs clean only, `all`
            every registered perturbation, `default` the default set. `None` means the default set.

    Raises:
        PerturbationSpecError: an unknown name or an intensity outside 0-3.
    """
    if spec is None:
        items = list(DEFAULT_PERTURBATIONS)
    elif isinstance(spec, str):
        items = [x.strip() for x in spec.split(",") if x.strip()]
    else:
        items = [x.strip() for x in spec if x.strip()]
    expanded: list[str] = []
    for item in items:
        if item == "none":
            continue
        if item == "all":
            expanded.extend(perturbations())
        elif item == "default":
            expanded.extend(DEFAULT_PERTURBATIONS)
        else:
            expanded.append(item)
    variants = [CLEAN]
    seen = {"none"}
    known = perturbations()
    for item in expanded:
        chain: list[tuple[str, int]] = []
        for part in item.split("+"):
            match = _ITEM.match(part.strip())
            if not match:
                raise PerturbationSpecError(
                    f"--perturb: {part.strip()!r} is not NAME or NAME:INTENSITY with an intensity 0-3"
                )
            name = match.group(1)
            if name not in known:
                raise PerturbationSpecError(
                    f"--perturb: unknown perturbation {name!r}; known: {', '.join(known)}"
                )
            level = int(match.group(2)) if match.group(2) is not None else DEFAULT_INTENSITY
            chain.append((name, level))
        canonical = "+".join(f"{n}:{i}" for n, i in chain)
        if canonical not in seen:
            seen.add(canonical)
            variants.append(Variant(canonical, tuple(chain)))
    return variants


@dataclass(frozen=True)
class Job:
    """One dialogue to simulate: a scenario run as one variant, in one trial."""

    scenario: Scenario
    variant: Variant
    idx: int
    """Position of the dialogue in the run: (scenario index x variants + variant number) x trials + trial."""
    trial: int = 0
    """Which repetition of the scenario and variant this is (`--trials`); trial 0 is the scenario as drawn,
    later trials re-run it with the user's, the noise's and the clock's random streams seeded anew."""
    keep: frozenset[tuple[int, int]] | None = None
    """Failure shrinking: the text edits that happen, as (user turn number from 1, attempt within the
    turn from 0); None for all of them."""

    def pair_id(self, run_id: str) -> str:
        """Shared by every variant of one scenario in one trial."""
        base = f"{run_id}-{self.scenario.index:06d}"
        return f"{base}-t{self.trial}" if self.trial else base

    def dialogue_id(self, run_id: str) -> str:
        if self.variant.clean:
            return f"{self.pair_id(run_id)}-none"
        return f"{self.pair_id(run_id)}-{self.variant.name.replace(':', '').replace('+', '-')}"
