"""Which eGeMAPS descriptors make each binned concept, and with which sign.

The definition the rest of :mod:`cuelab.core.cues` reads: the norms profile
keeps statistics for these descriptors and cuts edges for these concepts, and
the concept scores average them (see :mod:`cuelab.core.cues.concepts`). It
imports nothing, so both can depend on it.
"""

from __future__ import annotations

#: Descriptor groups per binned concept: (eGeMAPS LLD name, sign).
CONCEPT_DESCRIPTORS: dict[str, tuple[tuple[str, int], ...]] = {
    "ENERGY": (("Loudness_sma3", +1),),
    "PITCH": (("F0semitoneFrom27.5Hz_sma3nz", +1),),
    "BRIGHTNESS": (
        ("alphaRatio_sma3", +1),
        ("hammarbergIndex_sma3", -1),
        ("slope0-500_sma3", +1),
        ("slope500-1500_sma3", +1),
    ),
    "DYNAMICS": (("spectralFlux_sma3", +1),),
    "FORMANTS": (
        ("F1frequency_sma3nz", +1),
        ("F2frequency_sma3nz", +1),
        ("F3frequency_sma3nz", +1),
    ),
}

#: Concepts binned with per-gender edges when a gender is known.
GENDERED_CONCEPTS: tuple[str, ...] = ("PITCH", "FORMANTS")

BINNED_CONCEPTS: tuple[str, ...] = tuple(CONCEPT_DESCRIPTORS)
