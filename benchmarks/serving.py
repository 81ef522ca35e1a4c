"""Clips per second of a remote (``openai:``) emotion run as requests overlap.

Starts the real-protocol test server (``tests/servers/openai_audio.py``: a
threaded HTTP server on 127.0.0.1 over a tiny random-weight Qwen2-Audio) with
an injected latency per request (default 50 ms, standing in for a GPU
server's queueing and network time), then runs the same batch
(:func:`cuelab.core.runs.run_eval`, first-token scoring) at each
``--concurrency`` value, in one process, and prints clips/s and the ratio to
the first value. Each run's predictions.csv is checked to be byte-identical to
the first run's: overlapping requests change the speed, never the result.

The tiny model's forward passes run one at a time on the server (a lock, as on
one GPU), so the speed-up measures how well CueLab hides request latency, the
part that several servers and vLLM's batching then multiply.

Usage::

    .venv/bin/python benchmarks/serving.py [--latency-ms 50] [--concurrency 1,4,16]
        [--limit 24] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the test server lives in tests/servers

from cuelab.core.models import tiny  # noqa: E402
from cuelab.core.runs import config_from_mapping, run_eval  # noqa: E402
from tests.servers.openai_audio import AudioChatServer, ServerOptions  # noqa: E402

DEMO_MANIFEST = ROOT / "assets" / "demo" / "manifest.csv"
CONDITIONS = ["audio-only", "correct", "conflict", "shuffle"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--limit", type=int, default=24, help="demo clips per run")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
    levels = [int(x) for x in args.concurrency.split(",")]

    with tempfile.TemporaryDirectory(prefix="cuelab-serving-") as tmp:
        work = Path(tmp)
        folder = tiny.build_qwen2_audio(work / "model")
        server = AudioChatServer(folder, ServerOptions(latency_s=args.latency_ms / 1000))
        url = server.start()
        try:
            results = []
            reference: bytes | None = None
            for level in levels:
                out = work / f"run-c{level}"
                config = config_from_mapping(
                    {"manifest": str(DEMO_MANIFEST), "models": [f"openai:{url}"],
                     "conditions": CONDITIONS, "limit": args.limit, "out": str(out),
                     "concurrency": level, "workers": 1},
                    None,
                )  # fmt: skip
                before = server.stats.chat_requests
                started = time.perf_counter()
                run_eval(config)
                seconds = time.perf_counter() - started
                data = (out / "predictions.csv").read_bytes()
                reference = reference or data
                results.append({
                    "concurrency": level, "seconds": round(seconds, 3),
                    "clips_per_s": round(args.limit / seconds, 2),
                    "requests": server.stats.chat_requests - before,
                    "max_in_flight": server.stats.max_in_flight,
                    "same_predictions": data == reference,
                })  # fmt: skip
                server.stats.max_in_flight = 0
        finally:
            server.stop()
    base = results[0]["clips_per_s"]
    for row in results:
        row["ratio"] = round(row["clips_per_s"] / base, 2)
    if args.json:
        print(json.dumps({"latency_ms": args.latency_ms, "clips": args.limit,
                          "machine": platform.machine(), "runs": results}))  # fmt: skip
        return 0
    print(f"{args.limit} demo clips x {len(CONDITIONS)} conditions, first-token scoring, "
          f"{args.latency_ms:g} ms injected latency per request")  # fmt: skip
    print(f"{'concurrency':>11} {'seconds':>8} {'clips/s':>8} {'ratio':>6} {'in flight':>9} same")
    for r in results:
        print(f"{r['concurrency']:>11} {r['seconds']:>8.2f} {r['clips_per_s']:>8.2f} "
              f"{r['ratio']:>6.2f} {r['max_in_flight']:>9} {r['same_predictions']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
