"""Render a run's HTML report in headless Chromium, save a screenshot, and check that it is not blank.

    python -m bench.report_screenshot --db X --run ID --out shot.png [--html report.html]
                                      [--window-size 1400,4000] [--threshold EXPR ...]
                                      [--min-non-white 0.02] [--min-colours 32]

The report is written with `botdrill.analysis._report.write_report` (to `--html`, or a temporary file), then
`chromium --headless --screenshot --window-size=1400,4000` draws it from the local file; the binary is the
first of chromium, chromium-browser, google-chrome and google-chrome-stable on PATH. The PNG is decoded here
in pure Python (zlib and the PNG row filters, no imaging library) to count the pixels that are not white and
the distinct colours; both are printed, and the command exits 1 when the screenshot looks blank (fewer
non-white pixels or colours than the minimums), 2 when it cannot run (no Chromium, no such run).
"""

from __future__ import annotations

import argparse
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from array import array
from dataclasses import dataclass
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser() -> str | None:
    """The path of the first Chromium-like browser on PATH, or None."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(
    html: Path, png: Path, *, window: tuple[int, int] = (1400, 4000), timeout: float = 120
) -> None:
    """Draw `html` with headless Chromium into `png` at `window` (width, height) CSS pixels.

    Raises:
        RuntimeError: no browser, or it failed or wrote no image.
    """
    browser = find_browser()
    if browser is None:
        raise RuntimeError(f"no Chromium binary on PATH (looked for {', '.join(BROWSERS)})")
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="botdrill-chromium-") as profile:
        cmd = [
            browser,
            "--headless",
            "--no-sandbox",  # containers and CI often run as root, where the sandbox refuses to start
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-extensions",
            "--no-first-run",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            f"--user-data-dir={profile}",
            f"--window-size={window[0]},{window[1]}",
            f"--screenshot={png.resolve()}",
            html.resolve().as_uri(),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if not png.exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise RuntimeError(
            f"{Path(browser).name} wrote no screenshot (exit {done.returncode}): {' | '.join(tail)}"
        )


@dataclass(frozen=True)
class Pixels:
    """What a screenshot holds, counted over every pixel."""

    width: int
    height: int
    non_white: int
    """Pixels whose colour is not pure white (alpha ignored)."""
    colours: int
    """Distinct RGB colours."""

    @property
    def non_white_share(self) -> float:
        return self.non_white / (self.width * self.height) if self.width and self.height else 0.0


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _add_bytes(x: bytes, y: bytes) -> bytes:
    """Bytewise (x + y) mod 256 with big-integer arithmetic (no carry between bytes)."""
    n = len(x)
    if not n:
        return b""
    low = int.from_bytes(b"\x7f" * n, "big")
    high = int.from_bytes(b"\x80" * n, "big")
    a, b = int.from_bytes(x, "big"), int.from_bytes(y, "big")
    return (((a & low) + (b & low)) ^ ((a ^ b) & high)).to_bytes(n, "big")


def _unfilter(kind: int, line: bytearray, prev: bytes, bpp: int) -> bytes:
    """Undo one scanline's PNG filter (RFC 2083, section 6)."""
    n = len(line)
    if kind == 0:
        return bytes(line)
    if kind == 2:  # Up: vectorised, the common filter for repeated rows
        return _add_bytes(bytes(line), prev)
    if kind == 1:
        if not any(line[bpp:]):  # a run of one colour
            return bytes(line[:bpp]) * (n // bpp)
        for i in range(bpp, n):
            line[i] = (line[i] + line[i - bpp]) & 0xFF
        return bytes(line)
    if kind == 3:
        for i in range(n):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        return bytes(line)
    if kind == 4:
        if not any(line) and prev[:bpp] * (n // bpp) == prev:  # a run of one colour under another
            return bytes(prev)
        for i in range(n):
            if i >= bpp:
                line[i] = (line[i] + _paeth(line[i - bpp], prev[i], prev[i - bpp])) & 0xFF
            else:
                line[i] = (line[i] + prev[i]) & 0xFF
        return bytes(line)
    raise ValueError(f"unknown PNG filter type {kind}")


def decode_png(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """(width, height, channels, rows) of an 8-bit, non-interlaced greyscale, RGB or RGBA PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    pos, idat = 8, bytearray()
    width = height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(colour, 0)
            if depth != 8 or not channels or interlace:
                raise ValueError(
                    f"unsupported PNG: depth {depth}, colour type {colour}, interlace {interlace}"
                )
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    raw = zlib.decompress(bytes(idat))
    stride = width * channels
    rows: list[bytes] = []
    prev = bytes(stride)
    for y in range(height):
        at = y * (stride + 1)
        row = _unfilter(raw[at], bytearray(raw[at + 1 : at + 1 + stride]), prev, channels)
        rows.append(row)
        prev = row
    return width, height, channels, rows


def count_pixels(png: bytes) -> Pixels:
    """Non-white pixels and distinct colours of a PNG image."""
    width, height, channels, rows = decode_png(png)
    white = 0xFFFFFF
    colours: set[int] = set()
    non_white = 0
    for row in rows:
        rgbx = bytearray(width * 4)
        if channels >= 3:
            for c in range(3):
                rgbx[c::4] = row[c::channels]
        else:  # grey, grey + alpha
            for c in range(3):
                rgbx[c::4] = row[0::channels]
        ints = array("I", bytes(rgbx))
        if sys.byteorder == "big":
            ints.byteswap()
        # the fourth byte is zero, so each int is the pixel's 0xBBGGRR colour
        non_white += width - ints.count(white)
        colours.update(ints)
    return Pixels(width=width, height=height, non_white=non_white, colours=len(colours))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", required=True, help="the botdrill DuckDB file")
    parser.add_argument("--run", default=None, help="run id (default: the latest)")
    parser.add_argument("--out", required=True, type=Path, help="PNG to write")
    parser.add_argument("--html", type=Path, default=None, help="keep the rendered report here")
    parser.add_argument("--window-size", default="1400,4000", help="WIDTH,HEIGHT in CSS pixels")
    parser.add_argument("--threshold", action="append", default=None, help="as botdrill report --threshold")
    parser.add_argument("--min-non-white", type=float, default=0.02, help="smallest non-white share (0-1)")
    parser.add_argument("--min-colours", type=int, default=32, help="fewest distinct colours")
    args = parser.parse_args()

    from botdrill.analysis._report import write_report
    from botdrill.scenarios import BotdrillError

    try:
        w, h = (int(v) for v in args.window_size.split(","))
    except ValueError:
        parser.error(f"--window-size {args.window_size!r} is not WIDTH,HEIGHT")
    with tempfile.TemporaryDirectory(prefix="botdrill-report-") as tmp:
        html = args.html or Path(tmp) / "report.html"
        try:
            report = write_report(args.db, html, args.run, thresholds=args.threshold)
            screenshot(html, args.out, window=(w, h))
        except (BotdrillError, RuntimeError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
    pixels = count_pixels(args.out.read_bytes())
    print(
        f"report of run {report.run_id}: {len(report.html)} bytes; "
        f"screenshot {args.out} {pixels.width}x{pixels.height}"
    )
    print(
        f"non-white pixels: {pixels.non_white} ({pixels.non_white_share:.1%}); "
        f"distinct colours: {pixels.colours}"
    )
    blank = pixels.non_white_share < args.min_non_white or pixels.colours < args.min_colours
    if blank:
        print(
            f"blank: below {args.min_non_white:.1%} non-white or {args.min_colours} colours", file=sys.stderr
        )
        raise SystemExit(1)
    print("not blank")


if __name__ == "__main__":
    main()
