"""Mix at an SNR measured over a named span: the speech (CueLab's default) or the whole clip.

:func:`~cuelab.core.audio.mixing.mix_at_snr` sets the SNR over the samples
the speech occupies. Other tools (torchaudio's ``add_noise``, audiomentations)
and some papers measure it over the whole clip, which, with speech padded
inside a longer background, lands several dB away from the speech-span value
(NOTES: +0.65 to +7.65 dB). :func:`mix_over` gives either, and measures both,
so a set's manifest can say which span it used and what the other one is.

The clip-span mix is exact without iteration: the background gain does not
change the ratio of the background's energy over the clip to its energy over
the speech span, so ``SNR_clip = SNR_speech − 10·log10(E_clip / E_span)`` for
any gain; one mix at the speech span tells the offset, a second one applies it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from cuelab.core.audio.mixing import MixResult, measure_snr_db, mix_at_snr
from cuelab.core.errors import CueLabError

SNR_SPANS = ("speech", "clip")


@dataclass(frozen=True)
class SpanMix:
    """A mix with the SNR measured over both spans."""

    result: MixResult
    snr_over: str
    snr_speech_db: float
    snr_clip_db: float

    @property
    def achieved_snr_db(self) -> float:
        """The SNR over the span the mix was made for."""
        return self.snr_speech_db if self.snr_over == "speech" else self.snr_clip_db


def clip_snr_db(result: MixResult) -> float:
    """The SNR of a mix over the whole clip (both stems' energies over every sample)."""
    return measure_snr_db(result.speech_stem, result.background_stem)


def mix_over(
    speech: np.ndarray,
    background: np.ndarray,
    sr: int,
    snr_db: float,
    onset_s: float,
    *,
    snr_over: str = "speech",
    **kwargs: Any,
) -> SpanMix:
    """:func:`mix_at_snr` with ``snr_db`` holding over ``snr_over`` (``speech`` or ``clip``).

    Raises:
        CueLabError: an unknown span; MixError and AudioError as :func:`mix_at_snr`.
    """
    if snr_over not in SNR_SPANS:
        raise CueLabError(f"SNR span {snr_over!r} is not speech or clip")
    result = mix_at_snr(speech, background, sr, snr_db, onset_s, **kwargs)
    if snr_over == "clip" and math.isfinite(snr_db):
        offset = result.achieved_snr_db - clip_snr_db(result)
        if math.isfinite(offset):
            result = mix_at_snr(speech, background, sr, snr_db + offset, onset_s, **kwargs)
    return SpanMix(result, snr_over, result.achieved_snr_db, clip_snr_db(result))
