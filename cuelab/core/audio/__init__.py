"""Audio: the one place for audio I/O, and speech over background.

``io`` loads any format, rate or channel count as mono float32 (soxr HQ),
validates it and writes atomically; ``mixing`` puts speech over a background
at an exact SNR measured over the speech span. The first layer of the
pipeline: it imports only the shared modules.
"""

from __future__ import annotations
