"""Generate CueLab's bundled synthetic demo corpus and background recordings.

Why: every panel of CueLab and the test suite must work on a fresh machine
without downloaded datasets. This script makes a small stand-in for an
emotional-speech corpus with espeak-ng (formant synthesis, *not* real
emotional speech) in which four speaking styles move energy, pitch, pitch
range and rate on purpose, so it doubles as a physics sanity set for the
acoustic features and concept tokens. It also makes a few background
recordings with numpy for the speech-over-background (SSEU) panel.

Re-running it rewrites identical files given the same espeak-ng build (all
randomness comes from fixed seeds; FLAC carries no timestamps).

Speaking styles (espeak-ng flags; range is SSML ``<prosody range>`` via ``-m``):

    ======== ===== ===== ===== ======= ==========================================
    style    -s    -p    -a    range   intent
    ======== ===== ===== ===== ======= ==========================================
    angry    210   60    165   170%    loud, fast, mid-high pitch, wide range
    happy    190   80    120   200%    high pitch, widest range, fast-ish
    neutral  170   50    100   100%    defaults (espeak-ng's own rate is 175)
    sad      125   25    55    40%     quiet, slow, low pitch, narrow range
    ======== ===== ===== ===== ======= ==========================================

    -s words per minute, -p base pitch 0-99, -a amplitude 0-200. Quirk: from
    about -a 120 (lower for loud voices such as m7) espeak-ng's automatic gain
    control holds peaks just under full scale; louder settings still raise the
    RMS (compressed, like shouting) rather than clip. ``check_clipping`` refuses
    any clip with samples at full scale.

Speakers (voice + variant; distinct variants and base accents):

    spk01_f en-us+f2           train    spk04_m en-us+m3       train
    spk02_f en+f4              train    spk05_m en+m1          train
    spk03_f en-gb-scotland+f5  test     spk06_m en-gb-x-rp+m7  test

    ``en`` is espeak-ng's British English voice file. Quirk: ``-v en-gb+f4``
    silently drops the variant (``en-gb`` is a language tag, not a voice file
    name), so speakers would collapse into one; ``check_distinct`` guards this.

Outputs (paths relative to the repository root unless overridden):

    assets/demo/<speaker>_<style>_<sentenceNN>.flac   16 kHz mono FLAC 16-bit
    assets/demo/manifest.csv           path,label,speaker,gender,split,transcript
    assets/backgrounds/<scene>_*.flac  16 kHz mono FLAC 16-bit, 10 s each
    assets/backgrounds/manifest.csv    path,scene,events,event_times,description

Usage:

    python scripts/make_demo.py                 # regenerate everything in assets/
    python scripts/make_demo.py --only 1 --demo-dir /tmp/d --backgrounds-dir /tmp/b
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

import numpy as np
import soundfile as sf
import soxr

SR = 16_000
ROOT = Path(__file__).resolve().parent.parent
DEMO_COLUMNS = ("path", "label", "speaker", "gender", "split", "transcript")
BACKGROUND_COLUMNS = ("path", "scene", "events", "event_times", "description")
# espeak-ng writes int16; this many samples at full scale means it saturated.
CLIP_LEVEL = 32_766 / 32_768
TRIM_DB = 40.0  # silence threshold below each clip's own peak
PAD_S = 0.10  # silence kept before and after speech
# One fixed gain for every clip (not a per-clip normalisation, so the styles'
# amplitude differences survive): espeak-ng's own gain control keeps peaks just
# under full scale, and resampling can overshoot them by a few per cent.
SPEECH_GAIN = 10 ** (-2 / 20)


@dataclass(frozen=True)
class Style:
    """espeak-ng settings that stand in for one emotion label."""

    label: str
    rate: int  # -s, words per minute
    pitch: int  # -p, 0-99
    amplitude: int  # -a, 0-200
    range_pct: int  # SSML <prosody range="N%">


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: an espeak-ng voice plus a variant."""

    speaker_id: str
    voice: str
    gender: str
    split: str


STYLES: tuple[Style, ...] = (
    Style("angry", rate=210, pitch=60, amplitude=165, range_pct=170),
    Style("happy", rate=190, pitch=80, amplitude=120, range_pct=200),
    Style("neutral", rate=170, pitch=50, amplitude=100, range_pct=100),
    Style("sad", rate=125, pitch=25, amplitude=55, range_pct=40),
)

SPEAKERS: tuple[Speaker, ...] = (
    Speaker("spk01_f", "en-us+f2", "f", "train"),
    Speaker("spk02_f", "en+f4", "f", "train"),
    Speaker("spk03_f", "en-gb-scotland+f5", "f", "test"),
    Speaker("spk04_m", "en-us+m3", "m", "train"),
    Speaker("spk05_m", "en+m1", "m", "train"),
    Speaker("spk06_m", "en-gb-x-rp+m7", "m", "test"),
)

# Lexically neutral on purpose: the words must not give the label away, so a
# model can only get the emotion from the acoustics.
SENTENCES: tuple[str, ...] = (
    "Kids are talking by the door.",
    "The meeting starts at nine tomorrow.",
    "I put the blue folder on the table.",
    "We walked home along the river.",
)

# Babble text for the cafe scene: different words from the demo sentences so
# an ASR check on a mix never finds the target words in the background.
BABBLE_LINES: tuple[tuple[str, str], ...] = (
    ("en-us+m2", "Did you see the game last night, it went on forever."),
    ("en+f1", "I will have a flat white and a slice of lemon cake please."),
    ("en-us+f3", "She said the train was late again so they took a taxi."),
    ("en+m4", "Honestly the new flat is lovely but the rent is awful."),
    ("en-us+m6", "Can we split the bill, I only had the soup and a water."),
    ("en+f5", "My sister is moving to the coast after the summer."),
)


# --- speech synthesis ----------------------------------------------------------------


def espeak(
    text: str,
    voice: str,
    *,
    rate: int = 175,
    pitch: int = 50,
    amplitude: int = 100,
    range_pct: int = 100,
) -> tuple[np.ndarray, int]:
    """Run espeak-ng and return (float32 samples, sample rate).

    The pitch range goes through SSML because espeak-ng has no command-line
    flag for it; ``-s/-p/-a`` still set the base values that SSML scales.
    """
    ssml = f'<speak><prosody range="{range_pct}%">{xml_escape(text)}</prosody></speak>'
    cmd = [
        "espeak-ng",
        "-v",
        voice,
        "-s",
        str(rate),
        "-p",
        str(pitch),
        "-a",
        str(amplitude),
        "-m",
        "--stdout",
        ssml,
    ]
    raw = subprocess.run(cmd, check=True, capture_output=True).stdout
    audio, sr = sf.read(io.BytesIO(raw), dtype="float32")
    return audio, int(sr)


def check_clipping(audio: np.ndarray, what: str) -> None:
    """Refuse saturated synthesis: clipping would fake a loudness cue."""
    n = int(np.count_nonzero(np.abs(audio) >= CLIP_LEVEL))
    if n > 2:
        raise SystemExit(f"{what}: espeak-ng output clips ({n} samples at full scale); lower -a")


def trim(audio: np.ndarray, sr: int) -> np.ndarray:
    """Cut leading/trailing silence relative to the clip's own peak, keep PAD_S."""
    env = np.abs(audio)
    loud = np.flatnonzero(env > env.max() * 10 ** (-TRIM_DB / 20))
    pad = int(PAD_S * sr)
    start = max(int(loud[0]) - pad, 0)
    stop = min(int(loud[-1]) + pad + 1, len(audio))
    return audio[start:stop]


def to_16k(audio: np.ndarray, sr: int) -> np.ndarray:
    """Resample to 16 kHz with soxr (deterministic, high quality)."""
    if sr == SR:
        return audio.astype(np.float32)
    return soxr.resample(audio, sr, SR, quality="HQ").astype(np.float32)


def write_flac(path: Path, audio: np.ndarray) -> None:
    """Write 16-bit mono FLAC; a peak at or above full scale is an error, not a clip."""
    peak = float(np.max(np.abs(audio)))
    if peak >= 1.0:
        raise SystemExit(f"{path.name}: peak {peak:.3f} would clip after resampling")
    sf.write(path, audio, SR, format="FLAC", subtype="PCM_16")


def check_distinct(speakers: tuple[Speaker, ...]) -> None:
    """Fail if two speakers synthesise identical audio (a variant was ignored)."""
    seen: dict[bytes, str] = {}
    for spk in speakers:
        audio, _ = espeak(SENTENCES[0], spk.voice)
        key = audio.tobytes()
        if key in seen:
            raise SystemExit(
                f"{spk.speaker_id}: voice {spk.voice!r} sounds identical to "
                f"{seen[key]}; espeak-ng ignored the variant"
            )
        seen[key] = spk.speaker_id


def make_speech(demo_dir: Path, speakers: tuple[Speaker, ...]) -> list[dict[str, str]]:
    """Synthesise every speaker x style x sentence clip; return manifest rows."""
    check_distinct(speakers)
    rows = []
    for spk in speakers:
        for style in STYLES:
            for idx, text in enumerate(SENTENCES, start=1):
                name = f"{spk.speaker_id}_{style.label}_{idx:02d}.flac"
                audio, sr = espeak(
                    text,
                    spk.voice,
                    rate=style.rate,
                    pitch=style.pitch,
                    amplitude=style.amplitude,
                    range_pct=style.range_pct,
                )
                check_clipping(audio, name)
                write_flac(demo_dir / name, SPEECH_GAIN * to_16k(trim(audio, sr), sr))
                rows.append(
                    {
                        "path": name,
                        "label": style.label,
                        "speaker": spk.speaker_id,
                        "gender": spk.gender,
                        "split": spk.split,
                        "transcript": text,
                    }
                )
    return rows


# --- backgrounds -----------------------------------------------------------------------


def _lowpass(x: np.ndarray, cutoff_hz: float) -> np.ndarray:
    """One-pole low-pass: enough to shape noise colour, and dependency-free."""
    from scipy.signal import lfilter

    a = np.exp(-2 * np.pi * cutoff_hz / SR)
    return np.asarray(lfilter([1 - a], [1, -a], x), dtype=np.float64)


def _pink(rng: np.random.Generator, n: int) -> np.ndarray:
    """Pink (1/f) noise by shaping white noise in the frequency domain."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SR)
    f[0] = f[1]
    x = np.fft.irfft(spec / np.sqrt(f), n)
    return x / np.std(x)


def _brown(rng: np.random.Generator, n: int) -> np.ndarray:
    """Brown (1/f^2) noise: integrated white noise with the drift removed."""
    x = np.cumsum(rng.standard_normal(n))
    x -= _lowpass(x, 5.0)  # remove the slow random walk so the level is stable
    return x / np.std(x)


def _tone_burst(freqs: tuple[float, ...], dur: float, *, fade: float = 0.02) -> np.ndarray:
    """Sum of sines with raised-cosine fades (a horn, a ring, a chirp note)."""
    t = np.arange(int(dur * SR)) / SR
    y = np.sin(2 * np.pi * np.outer(freqs, t)).mean(axis=0)
    nf = int(fade * SR)
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, nf))
    y[:nf] *= ramp
    y[-nf:] *= ramp[::-1]
    return y


def _add(dst: np.ndarray, src: np.ndarray, at_s: float, gain: float = 1.0) -> None:
    i = int(at_s * SR)
    j = min(i + len(src), len(dst))
    dst[i:j] += gain * src[: j - i]


def _click(rng: np.random.Generator, dur: float, decay: float, hp_hz: float) -> np.ndarray:
    """A short decaying noise burst (clink, key press)."""
    n = int(dur * SR)
    noise = rng.standard_normal(n)
    noise -= _lowpass(noise, hp_hz)
    return noise * np.exp(-np.arange(n) / (decay * SR))


def cafe(rng: np.random.Generator, dur: float) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """Speech babble from six espeak voices plus cup and plate clinks."""
    n = int(dur * SR)
    y = np.zeros(n)
    for k, (voice, text) in enumerate(BABBLE_LINES):
        speech, sr = espeak(text, voice, rate=165, amplitude=60)
        s = to_16k(speech, sr).astype(np.float64)
        s /= np.std(s) + 1e-12
        offset = 0.3 * k
        while offset < dur:  # loop each talker so the babble never thins out
            _add(y, s, offset, gain=0.12)
            offset += len(s) / SR + 0.4 + 0.3 * k
    y += 0.05 * _pink(rng, n)
    events = [("speech_babble", 0.0, dur)]
    for t0 in (1.3, 3.9, 6.2, 8.4):
        clink = np.zeros(int(0.3 * SR))
        for f in rng.uniform(2500, 5200, size=3):
            clink += _tone_burst((float(f),), 0.3, fade=0.002) * np.exp(
                -np.arange(len(clink)) / (0.05 * SR)
            )
        _add(y, clink + 0.3 * _click(rng, 0.3, 0.01, 2000.0), t0, gain=0.5)
        events.append(("dishes", t0, t0 + 0.3))
    return y, events


def street(
    rng: np.random.Generator, dur: float
) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """Low-passed brown-noise rumble with passing-car swells and one horn."""
    n = int(dur * SR)
    t = np.arange(n) / SR
    y = 0.4 * _lowpass(_brown(rng, n), 600.0)
    y /= np.std(y)
    y *= 0.15
    events = [("traffic", 0.0, dur)]
    for centre, width in ((2.5, 0.9), (7.0, 1.2)):
        swell = np.exp(-0.5 * ((t - centre) / width) ** 2)
        car = _lowpass(_pink(rng, n), 1200.0)
        y += 0.5 * swell * car / np.std(car)
        events.append(("car_passing", centre - 2 * width, centre + 2 * width))
    _add(y, _tone_burst((415.0, 523.0), 0.6), 5.2, gain=0.35)
    events.append(("car_horn", 5.2, 5.8))
    return y, events


def office(
    rng: np.random.Generator, dur: float
) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """Mains hum with harmonics, keyboard typing bursts and a phone ring."""
    n = int(dur * SR)
    t = np.arange(n) / SR
    harmonics = np.arange(1, 6)
    hum = (0.03 / harmonics) @ np.sin(2 * np.pi * 50.0 * np.outer(harmonics, t))
    y = hum + 0.01 * _pink(rng, n)
    events = [("mains_hum", 0.0, dur)]
    for start, stop in ((0.8, 3.0), (6.5, 8.8)):
        t0 = start
        while t0 < stop:
            _add(y, _click(rng, 0.04, 0.004, 1500.0), t0, gain=0.25)
            t0 += float(rng.uniform(0.09, 0.22))
        events.append(("keyboard_typing", start, stop))
    ring = np.concatenate(
        [
            _tone_burst((440.0, 480.0), 0.4),
            np.zeros(int(0.2 * SR)),
            _tone_burst((440.0, 480.0), 0.4),
        ]
    )
    _add(y, ring, 4.0, gain=0.2)
    events.append(("phone_ring", 4.0, 5.0))
    return y, events


def park(rng: np.random.Generator, dur: float) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """Pink-noise wind with slow gusts and bird chirps (fast upward sweeps)."""
    n = int(dur * SR)
    t = np.arange(n) / SR
    gust = 0.6 + 0.4 * np.sin(2 * np.pi * 0.13 * t + 1.0)
    y = 0.12 * gust * _lowpass(_pink(rng, n), 800.0) / 0.35
    events = [("wind", 0.0, dur)]
    for t0 in (1.1, 1.5, 4.6, 4.9, 5.3, 8.2):
        c_dur = 0.12
        tc = np.arange(int(c_dur * SR)) / SR
        f0, f1 = 2800.0, 4600.0
        phase = 2 * np.pi * (f0 * tc + (f1 - f0) * tc**2 / (2 * c_dur))
        chirp = np.sin(phase) * np.hanning(len(tc))
        _add(y, chirp, t0, gain=0.3)
        events.append(("bird_chirp", t0, t0 + c_dur))
    return y, events


@dataclass(frozen=True)
class Background:
    """One background recording: how to make it and how to describe it."""

    name: str
    scene: str
    seed: int
    make: Callable[[np.random.Generator, float], tuple[np.ndarray, list[tuple[str, float, float]]]]
    description: str


BACKGROUNDS: tuple[Background, ...] = (
    Background(
        "cafe_babble.flac",
        "cafe",
        101,
        cafe,
        "six espeak-ng talkers summed at low level over pink noise, with cup clinks",
    ),
    Background(
        "street_traffic.flac",
        "street",
        202,
        street,
        "low-passed brown-noise rumble, two passing-car swells and a two-tone horn",
    ),
    Background(
        "office_hum.flac",
        "office",
        303,
        office,
        "50 Hz mains hum with harmonics, two keyboard typing bursts and a phone ring",
    ),
    Background(
        "park_birds.flac",
        "park",
        404,
        park,
        "gusting pink-noise wind with short upward bird-chirp sweeps",
    ),
)
BACKGROUND_S = 10.0


def make_backgrounds(bg_dir: Path, backgrounds: tuple[Background, ...]) -> list[dict[str, str]]:
    """Render each background at a fixed peak of -3 dBFS; return manifest rows."""
    rows = []
    for bg in backgrounds:
        y, events = bg.make(np.random.default_rng(bg.seed), BACKGROUND_S)
        y = (y * (10 ** (-3 / 20)) / np.max(np.abs(y))).astype(np.float32)
        write_flac(bg_dir / bg.name, y)
        labels = list(dict.fromkeys(label for label, _, _ in events))
        times = [f"{label}@{a:.2f}-{b:.2f}" for label, a, b in events]
        rows.append(
            {
                "path": bg.name,
                "scene": bg.scene,
                "events": ";".join(labels),
                "event_times": ";".join(times),
                "description": bg.description,
            }
        )
    return rows


# --- driver --------------------------------------------------------------------------


def write_manifest(path: Path, columns: tuple[str, ...], rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _clear(folder: Path) -> None:
    """Remove generated audio and manifest, keep hand-written files (README)."""
    folder.mkdir(parents=True, exist_ok=True)
    for p in [*folder.glob("*.flac"), folder / "manifest.csv"]:
        p.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-dir", type=Path, default=ROOT / "assets" / "demo")
    parser.add_argument("--backgrounds-dir", type=Path, default=ROOT / "assets" / "backgrounds")
    parser.add_argument(
        "--only",
        type=int,
        default=None,
        metavar="N",
        help="quick mode: only the first N speakers and N backgrounds",
    )
    args = parser.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        print("make_demo: espeak-ng is not installed (apt-get install espeak-ng)", file=sys.stderr)
        return 1
    n = args.only
    speakers = SPEAKERS if n is None else SPEAKERS[:n]
    backgrounds = BACKGROUNDS if n is None else BACKGROUNDS[:n]

    t0 = time.perf_counter()
    _clear(args.demo_dir)
    _clear(args.backgrounds_dir)
    demo_rows = make_speech(args.demo_dir, speakers)
    write_manifest(args.demo_dir / "manifest.csv", DEMO_COLUMNS, demo_rows)
    bg_rows = make_backgrounds(args.backgrounds_dir, backgrounds)
    write_manifest(args.backgrounds_dir / "manifest.csv", BACKGROUND_COLUMNS, bg_rows)
    print(
        f"make_demo: {len(demo_rows)} clips, {len(bg_rows)} backgrounds "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
