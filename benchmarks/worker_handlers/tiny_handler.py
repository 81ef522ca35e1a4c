"""A tiny contrastive model (numpy) for ``benchmarks/worker.py``: run in-process and in a worker.

Audio: mean magnitude spectrum of 1024-sample frames, projected to 64 numbers
by a fixed random matrix. Text: character trigram counts hashed into 512
buckets, projected the same way. Cosine similarity, logit scale 10.
"""

import zlib

import numpy as np

RNG = np.random.default_rng(0)
AUDIO_PROJ = RNG.standard_normal((513, 64)).astype(np.float32)
TEXT_PROJ = RNG.standard_normal((512, 64)).astype(np.float32)


class TinyHandler:
    def __init__(self, location, options):
        self.sample_rate = 48000

    def info(self):
        return {"kind": "contrastive", "sample_rate": self.sample_rate, "details": {}}

    def audio_embedding(self, samples):
        n = len(samples) // 1024 * 1024
        frames = samples[:n].reshape(-1, 1024)
        spectrum = np.abs(np.fft.rfft(frames, axis=1)).mean(axis=0)
        return spectrum @ AUDIO_PROJ

    def text_embedding(self, text):
        counts = np.zeros(512, dtype=np.float32)
        for i in range(len(text) - 2):
            counts[zlib.crc32(text[i : i + 3].encode("utf-8")) % 512] += 1
        return counts @ TEXT_PROJ

    def score_labels(self, audio, texts):
        a = self.audio_embedding(audio.samples(self.sample_rate))
        t = np.stack([self.text_embedding(x) for x in texts])
        cos = (t @ a) / (np.linalg.norm(t, axis=1) * np.linalg.norm(a))
        return {"cosine": cos.tolist(), "logits": (10 * cos).tolist(), "logit_scale": 10.0}
