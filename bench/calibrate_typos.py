"""Fit the typo model's edit-type mix to real misspellings and write it into `agents/data/typos.yaml`.

Reads `misspellings/wikipedia.dat` (Wikipedia's lists of common misspellings, in Roger Mitton's format),
classifies every `(word, misspelling)` pair with `edit_type`/`edit_mode` from `botdrill.agents._typos`,
and replaces the block between the `# >>> fitted` and `# <<< fitted` markers of the YAML file. The rest of
the file (written by hand, with its comments) is left as it is.

    python -m bench.calibrate_typos [--data DIR] [--out agents/data/typos.yaml] [--check]

The data folder is `--data`, else `$BOTDRILL_DATA`, else `shared/data` beside the repository.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from botdrill.agents._typos import fit, read_misspellings

from ._data import default_data_dir

SOURCE = Path("misspellings") / "wikipedia.dat"
YAML = Path(__file__).resolve().parents[1] / "agents" / "data" / "typos.yaml"
BEGIN, END = "# >>> fitted", "# <<< fitted"


def calibrate(data_dir: Path) -> dict[str, Any]:
    """The `fitted` block for the misspellings under `data_dir`."""
    return {"source": SOURCE.name, **fit(read_misspellings(data_dir / SOURCE))}


def write_fitted(text: str, fitted: dict[str, Any]) -> str:
    """`text` (the YAML file) with its fitted block replaced by `fitted`.

    Raises:
        ValueError: the markers are missing, so there is no telling where the fitted part is.
    """
    lines = text.splitlines(keepends=True)
    try:
        begin = next(i for i, line in enumerate(lines) if line.startswith(BEGIN))
        end = next(i for i, line in enumerate(lines) if line.startswith(END) and i > begin)
    except StopIteration:
        raise ValueError(f"the typo model has no {BEGIN!r} ... {END!r} block to update") from None
    block = yaml.safe_dump({"fitted": fitted}, sort_keys=False, default_flow_style=None, width=110)
    return "".join([*lines[: begin + 1], block, *lines[end:]])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=None, help="folder holding misspellings/wikipedia.dat")
    parser.add_argument("--out", type=Path, default=YAML, help="typo model to update")
    parser.add_argument("--check", action="store_true", help="only say whether the file is up to date")
    args = parser.parse_args()

    data_dir = args.data or default_data_dir()
    if not (data_dir / SOURCE).is_file():
        sys.exit(f"no {SOURCE} under {data_dir}: pass --data or set BOTDRILL_DATA")
    fitted = calibrate(data_dir)
    old = args.out.read_text(encoding="utf-8")
    new = write_fitted(old, fitted)
    print(yaml.safe_dump(fitted, sort_keys=False), end="")
    if args.check:
        sys.exit(0 if new == old else f"{args.out} is out of date: run python -m bench.calibrate_typos")
    if new != old:
        args.out.write_text(new, encoding="utf-8")
        print(f"updated {args.out}")
    else:
        print(f"{args.out} is up to date")


if __name__ == "__main__":
    main()
