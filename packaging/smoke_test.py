"""Smoke test of a frozen CueLab build, for release builds (not part of pytest).

    python packaging/smoke_test.py /tmp/cuelab-dist/cuelab/cuelab [--alm]

Runs the frozen binary offscreen with fresh feature-cache and log folders,
so openSMILE, the reference model and the forkserver workers really run
inside the bundle rather than answering from a cache:

1. ``cuelab --version``;
2. ``cuelab predict DEMO_CLIP --model reference --json``: the eGeMAPS
   features, the concept tokens and the shipped reference model;
3. ``cuelab norms DEMO_MANIFEST --workers 2``: openSMILE in forkserver
   worker processes (started by re-running the frozen binary); the bin
   edges must equal the shipped demo norms, which came from the same clips;
4. ``cuelab gui --screenshot PNG``: the window draws every panel on the
   demo; the PNG must be large, at least 800x600 (or exactly ``--size``)
   and show many colours (drawn panels, not a blank window);
5. with ``--alm``: a tiny random-weight Qwen2-Audio checkpoint is built with
   *this* Python (which needs cuelab and transformers) and scored by the
   frozen binary, which proves torch and transformers load in the bundle.

Only the standard library is used to read the PNG, so any Python runs it.
Exit status 0 when every check passes, 1 otherwise; each check prints one line.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Sequence
from pathlib import Path

MIN_PNG_BYTES = 20_000
MIN_COLOURS = 50
DEMO_CLIP = "spk01_f_angry_01.flac"
EDGE_TOLERANCE = 1e-6


def read_png(path: Path) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit, non-interlaced RGB/RGBA PNG into (width, height, rows).

    Qt writes exactly this kind of PNG for a window grab; anything else is
    reported as a failure rather than guessed at.
    """
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG file")
    pos, idat, header = 8, [], b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    channels = {2: 3, 6: 4}.get(colour)
    if depth != 8 or channels is None or interlace:
        raise ValueError(f"{path}: unsupported PNG (depth {depth}, colour type {colour})")
    raw = zlib.decompress(b"".join(idat))
    return width, height, _unfilter(raw, width * channels, height, channels)


def _unfilter(raw: bytes, stride: int, height: int, bpp: int) -> list[bytes]:
    """Undo the per-row PNG filters (None, Sub, Up, Average, Paeth)."""
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        if kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev))
        elif kind in (1, 3, 4):
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                up, corner = prev[i], (prev[i - bpp] if i >= bpp else 0)
                if kind == 1:
                    pred = left
                elif kind == 3:
                    pred = (left + up) // 2
                else:
                    p = left + up - corner
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                    pred = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        prev = line
    return rows


def colour_count(width: int, rows: list[bytes], step_x: int = 37, step_y: int = 23) -> int:
    """Distinct colours on a sparse grid: a drawn window has hundreds, a blank one a few."""
    bpp = len(rows[0]) // width
    return len(
        {
            rows[y][x * bpp : x * bpp + 3]
            for y in range(0, len(rows), step_y)
            for x in range(0, width, step_x)
        }
    )


class Smoke:
    """Runs the checks against one binary and remembers failures."""

    def __init__(self, binary: Path, work: Path, timeout_s: float) -> None:
        self.binary = binary
        self.work = work
        self.timeout_s = timeout_s
        self.failures = 0
        self.env = {
            **os.environ,
            "QT_QPA_PLATFORM": "offscreen",
            "CUELAB_CACHE_DIR": str(work / "cache"),
            "CUELAB_LOG_DIR": str(work / "logs"),
        }

    def run(self, args: Sequence[str]) -> tuple[subprocess.CompletedProcess[str], float]:
        """Run the frozen binary with ``args``; return the process and its wall time."""
        start = time.perf_counter()
        proc = subprocess.run(
            [str(self.binary), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=self.timeout_s,
            check=False,
        )
        return proc, time.perf_counter() - start

    def report(self, name: str, ok: bool, detail: str) -> None:
        """Print one line per check and count failures."""
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
        self.failures += not ok

    @property
    def assets(self) -> Path:
        """The assets folder inside the one-folder bundle."""
        return self.binary.parent / "_internal" / "cuelab" / "assets"

    def version(self) -> None:
        proc, _ = self.run(["--version"])
        self.report("version", proc.returncode == 0, (proc.stdout or proc.stderr).strip())

    def predict_reference(self) -> None:
        clip = self.assets / "demo" / DEMO_CLIP
        proc, wall = self.run(["predict", str(clip), "--model", "reference", "--json"])
        try:
            out = json.loads(proc.stdout)
            ok = proc.returncode == 0 and out["label"] in out["probs"] and out["tokens"]
            detail = f"{out['label']} ({max(out['probs'].values()):.2f}), {wall:.1f} s"
        except (ValueError, KeyError, TypeError):
            ok, detail = False, f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}"
        self.report("predict --model reference", bool(ok), detail)

    def norms(self) -> None:
        out = self.work / "norms.json"
        manifest = self.assets / "demo" / "manifest.csv"
        proc, wall = self.run(["norms", str(manifest), "-o", str(out), "--workers", "2"])
        try:
            built = json.loads(out.read_text())
            shipped = json.loads((self.assets / "norms" / "demo-norms.json").read_text())
            worst = _max_difference(built["edges"], shipped["edges"])
            ok = proc.returncode == 0 and built["n_clips"] == shipped["n_clips"]
            ok = ok and worst <= EDGE_TOLERANCE
            detail = f"{built['n_clips']} clips, edges differ by at most {worst:.1e}, {wall:.1f} s"
        except (OSError, ValueError, KeyError, TypeError):
            ok, detail = False, f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}"
        self.report("norms --workers 2", ok, detail)

    def screenshot(self, size: tuple[int, int] | None) -> None:
        png = self.work / "frozen.png"
        proc, wall = self.run(["gui", "--screenshot", str(png), "--timeout", "120"])
        if proc.returncode != 0 or not png.exists():
            self.report("gui --screenshot", False, f"exit {proc.returncode}: {proc.stderr[-300:]}")
            return
        try:
            width, height, rows = read_png(png)
        except ValueError as exc:
            self.report("gui --screenshot", False, str(exc))
            return
        colours, nbytes = colour_count(width, rows), png.stat().st_size
        ok_size = (width, height) == size if size else width >= 800 and height >= 600
        ok = ok_size and nbytes >= MIN_PNG_BYTES and colours >= MIN_COLOURS
        detail = f"{width}x{height}, {nbytes} bytes, {colours} colours, {wall:.1f} s"
        self.report("gui --screenshot", ok, detail)

    def predict_tiny_alm(self) -> None:
        try:
            from cuelab.core.models.tiny import build_qwen2_audio
        except ImportError as exc:
            self.report("predict tiny qwen2-audio", False, f"--alm needs cuelab here: {exc}")
            return
        folder = build_qwen2_audio(self.work / "tiny-qwen2-audio")
        clip = self.assets / "demo" / DEMO_CLIP
        args = ["predict", str(clip), "--model", f"qwen2-audio:{folder}", "--device", "cpu"]
        proc, wall = self.run([*args, "--quant", "fp32", "--json"])
        try:
            out = json.loads(proc.stdout)
            ok, detail = (
                proc.returncode == 0 and bool(out["probs"]),
                f"{out['label']}, {wall:.1f} s",
            )
        except (ValueError, KeyError, TypeError):
            ok, detail = False, f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}"
        self.report("predict tiny qwen2-audio", ok, detail)


def _max_difference(a: object, b: object) -> float:
    """Largest absolute difference between two nested JSON structures of numbers (inf if unlike)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return float("inf")
        return max((_max_difference(a[k], b[k]) for k in a), default=0.0)
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return float("inf")
        return max((_max_difference(x, y) for x, y in zip(a, b)), default=0.0)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b)
    return 0.0 if a == b else float("inf")


def parse_size(text: str) -> tuple[int, int]:
    """``1440x969`` -> (1440, 969)."""
    width, _, height = text.lower().partition("x")
    return int(width), int(height)


def main(argv: Sequence[str] | None = None) -> int:
    """Run every check; return 0 when all pass."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary", type=Path, help="the frozen executable (dist/cuelab/cuelab)")
    parser.add_argument("--size", type=parse_size, metavar="WxH", help="exact screenshot size")
    parser.add_argument("--alm", action="store_true", help="also score a tiny Qwen2-Audio")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="work here and keep the files")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per command")
    args = parser.parse_args(argv)
    if not os.access(args.binary, os.X_OK):
        print(f"FAIL {args.binary}: not an executable file")
        return 1
    with tempfile.TemporaryDirectory(prefix="cuelab-smoke-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        smoke = Smoke(args.binary.resolve(), work, args.timeout)
        smoke.version()
        smoke.predict_reference()
        smoke.norms()
        smoke.screenshot(args.size)
        if args.alm:
            smoke.predict_tiny_alm()
    print("smoke test passed" if not smoke.failures else f"{smoke.failures} check(s) failed")
    return 1 if smoke.failures else 0


if __name__ == "__main__":
    sys.exit(main())
