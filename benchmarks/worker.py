"""Per-call overhead of a model worker against the same model in-process, as a ratio.

A tiny contrastive model (``benchmarks/worker_handlers/tiny_handler.py``,
numpy) scores a clip against the four emotion label prompts: in CueLab's
process (the handler called directly), then through a real worker process
(``worker/main.py``, CueLab's own Python, the JSON-lines protocol with the
audio as base64 float32). The worker adds the encoding, two pipe hops and
the decoding; the model's own work is the same. Prints per-call times and
the ratio; ``--json`` prints one JSON line.

Usage::

    .venv/bin/python benchmarks/worker.py [--seconds S] [--calls N] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cuelab.core.models.base import Clip, LoadOptions  # noqa: E402
from cuelab.core.models.isolated.adapter import ContrastiveWorkerAdapter  # noqa: E402
from cuelab.core.models.isolated.client import WorkerCommand  # noqa: E402
from cuelab.core.models.isolated.worker import protocol  # noqa: E402
from cuelab.core.tasks.prompts import TaskPrompt  # noqa: E402

HANDLERS = Path(__file__).resolve().parent / "worker_handlers"
LABELS = ("angry", "happy", "neutral", "sad")
TASK = TaskPrompt("ser", "{labels}", "{labels} {tokens}")


class TinyWorkerAdapter(ContrastiveWorkerAdapter):
    family = "tiny"


def per_call(fn, calls: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="clip length (48 kHz)")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    sys.path.insert(0, str(HANDLERS))
    from tiny_handler import TinyHandler

    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(int(args.seconds * 48000))).astype(np.float32)
    texts = [f"a person speaking in a {lab} voice" for lab in LABELS]
    handler = TinyHandler("-", {})

    class Samples:  # in-process: the array itself, no encoding
        def samples(self, rate: int) -> np.ndarray:
            return audio

    def in_process() -> None:
        handler.score_labels(Samples(), texts)

    command = WorkerCommand(sys.executable, "tiny", "tiny_handler:TinyHandler", [str(HANDLERS)])
    started = time.perf_counter()
    model = TinyWorkerAdapter(command, "-", LoadOptions())
    startup = time.perf_counter() - started
    clip = Clip(audio, 48000)
    try:
        local = per_call(in_process, args.calls)
        remote = per_call(lambda: model.score_labels(clip, TASK, LABELS, [None]), args.calls)
        payload = len(protocol.encode({"audio": model.audio_payload(clip), "texts": texts}))
    finally:
        model.unload()
    result = {
        "clip_seconds": args.seconds,
        "calls": args.calls,
        "in_process_ms": round(local * 1000, 3),
        "worker_ms": round(remote * 1000, 3),
        "overhead_ms": round((remote - local) * 1000, 3),
        "ratio": round(remote / local, 2),
        "request_bytes": payload,
        "worker_startup_s": round(startup, 3),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"clip {args.seconds:g} s at 48 kHz, {args.calls} calls, request {payload} bytes")
    print(f"  in-process  {result['in_process_ms']:8.3f} ms per call")
    print(f"  worker      {result['worker_ms']:8.3f} ms per call")
    print(f"  overhead    {result['overhead_ms']:8.3f} ms per call ({result['ratio']}x)")
    print(f"  worker start-up (hello + load) {startup:.3f} s")


if __name__ == "__main__":
    main()
