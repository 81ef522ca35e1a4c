"""A small real contrastive model for protocol tests, standard library only.

Audio embedding: four statistics of the samples (RMS, mean absolute
difference, zero-crossing rate, peak); text embedding: four numbers from the
text's SHA-256. Cosine similarity and a logit scale of 10, as CLAP does. It
misbehaves on request, to test what CueLab does with a worker that crashes,
hangs or writes on stdout: LOCATION is a JSON file naming the ``score_labels``
calls (counted across worker processes in a counter file) on which to exit,
hang, print to stdout or write a non-protocol line on the protocol stream, and
on which to start a child process that holds the protocol pipe (``child_on``,
its PID written to ``child_pids``), then exit at once (``exit_after_child``).
"""

import hashlib
import json
import math
import os
import subprocess
import sys
import time

import protocol


def audio_embedding(samples):
    n = len(samples)
    rms = math.sqrt(sum(x * x for x in samples) / n)
    diff = sum(abs(samples[i] - samples[i - 1]) for i in range(1, n)) / max(1, n - 1)
    zcr = sum(1 for i in range(1, n) if (samples[i] >= 0) != (samples[i - 1] >= 0)) / n
    peak = max(abs(x) for x in samples)
    return [rms * 10, diff * 10, zcr * 10, peak]


def text_embedding(text):
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return [(digest[i] - 127.5) / 127.5 for i in range(4)]


def cosine(a, b):
    na = math.sqrt(sum(x * x for x in a)) or 1.0
    nb = math.sqrt(sum(x * x for x in b)) or 1.0
    return sum(x * y for x, y in zip(a, b)) / (na * nb)


def scores(samples, texts, scale=10.0):
    a = audio_embedding(samples)
    cos = [cosine(a, text_embedding(t)) for t in texts]
    return {"cosine": cos, "logits": [scale * c for c in cos], "logit_scale": scale}


class ProbeHandler:
    def __init__(self, location, options):
        with open(location) as fh:
            self.plan = json.load(fh)
        self.sample_rate = int(self.plan.get("sample_rate", 16000))
        sys.stderr.write("probe loaded %s\n" % location)

    def info(self):
        return {"kind": "contrastive", "sample_rate": self.sample_rate, "details": {"probe": True}}

    def _count(self):
        path = self.plan["counter"]
        n = 1
        if os.path.exists(path):
            with open(path) as fh:
                n = int(fh.read() or 0) + 1
        with open(path, "w") as fh:
            fh.write(str(n))
        return n

    def score_labels(self, audio, texts):
        n = self._count()
        if n in self.plan.get("crash_on", []):
            sys.stderr.write("probe: exiting on call %d\n" % n)
            sys.stderr.flush()
            os._exit(3)
        if n in self.plan.get("child_on", []):  # a child that keeps the protocol pipe open
            out = sys.modules["__main__"].PROTOCOL_OUT
            child = subprocess.Popen(
                ["sleep", "600"], stdout=out.fileno(), stdin=subprocess.DEVNULL, close_fds=True
            )
            with open(self.plan["child_pids"], "a") as fh:
                fh.write("%d\n" % child.pid)
            if self.plan.get("exit_after_child"):
                sys.stderr.write("probe: exiting, its child runs on\n")
                sys.stderr.flush()
                os._exit(4)
        if n in self.plan.get("hang_on", []):
            time.sleep(3600)
        if n in self.plan.get("print_on", []):
            print("chatter from a library on stdout")
            os.write(1, b"raw bytes on fd 1\n")
        if n in self.plan.get("garbage_on", []):
            out = sys.modules["__main__"].PROTOCOL_OUT
            out.write(b"this is not a protocol line\n")
        if n in self.plan.get("torn_on", []):  # dies half-way through writing its answer
            out = sys.modules["__main__"].PROTOCOL_OUT
            out.write(b'{"id": %d, "ok": true, "result": {"logi' % n)
            out.flush()
            os._exit(137)
        if audio.data is None:
            raise ValueError("the probe takes samples, not files")
        result = scores(protocol.floats_from_bytes(audio.data), list(texts))
        if n in self.plan.get("nan_on", []):
            result["logits"][0] = float("nan")
        if "env_to" in self.plan:  # what the worker was given, for the credentials test
            with open(self.plan["env_to"], "w") as fh:
                json.dump(dict(os.environ), fh)
        return result

    def embed_text(self, texts):
        return {"embeddings": [text_embedding(t) for t in texts]}
