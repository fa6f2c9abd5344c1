"""The reference assistant is not tuned to the noise: its training phrases stay clean.

Its brittleness under typos, fillers and chat-speak is what a drill measures; a bot trained on botdrill's
own noise would make that measurement meaningless.
"""

from __future__ import annotations

import re
from importlib import resources

import yaml

from botdrill.agents._disfluency import model as disfluency_model

_DATA = resources.files("botdrill.agents") / "data"


def _training_words() -> set[str]:
    data = yaml.safe_load((_DATA / "reference_training.yaml").read_text(encoding="utf-8"))
    phrases = [p for examples in data["intents"].values() for p in examples]
    assert len(phrases) > 200
    return {w for p in phrases for w in re.findall(r"[a-z']+", p.lower())}


def test_no_listed_misspelling_in_the_training_phrases() -> None:
    typos = yaml.safe_load((_DATA / "typos.yaml").read_text(encoding="utf-8"))
    listed = {wrong.lower() for wrongs in typos["misspellings"].values() for wrong in wrongs}
    assert listed, "the misspelling list is empty"
    assert _training_words() & listed == set()


def test_no_filler_or_chatspeak_in_the_training_phrases() -> None:
    surface = yaml.safe_load((_DATA / "surface.yaml").read_text(encoding="utf-8"))
    abbreviations = {
        a.lower()
        for value in surface["chatspeak"].values()
        for a in (value if isinstance(value, list) else [value])
        if " " not in a
    }
    # "like", "so", "well" are fillers and ordinary words ("I'd like to"): only hesitation sounds count.
    ordinary = {"like", "so", "well", "right", "okay", "ok", "actually", "oh"}
    fillers = {f.lower() for f in disfluency_model().fillers if " " not in f} - ordinary
    assert fillers and abbreviations
    assert _training_words() & (fillers | abbreviations) == set()
