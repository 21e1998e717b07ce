"""synth-digits: English and German spoken digits synthesised offline with eSpeak NG (see espeak.py).

20 classes, "en-0".."en-9" then "de-0".."de-9" (label = language * 10 + digit, as in SHD). A speaker
is an eSpeak voice variant (m1..m8, f1..f5, klatt..klatt6 and about 80 named variants); every voice
says every class REPEATS times, each utterance with its own pitch, pitch range, speaking rate,
volume, time shift and background noise (white or pink, 10-30 dB SNR). About
70 / 15 / 15 % of the voices are train / val / test: validation and test voices never occur in
training. Everything is drawn from the seed, so the same seed gives byte-identical features.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import librosa
import numpy as np

from neurostack.data import espeak
from neurostack.data._progress import progress_bar
from neurostack.data._subset import seeded_subset
from neurostack.data.features import FeatureConfig, audio_features, check_dataset_memory, fit_length
from neurostack.errors import NeurostackError

LANGUAGES = ("en", "de")
WORDS = {
    "en": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    "de": ("null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"),
}
CLASSES = [f"{lang}-{d}" for lang in LANGUAGES for d in range(10)]
SPLIT_FRACTIONS = {"val": 0.15, "test": 0.15}  # of the voices; the rest train
REPEATS = 2  # utterances per (voice, class), each with fresh prosody and noise
# "fast" is an unstable test voice (its own file says so); names with spaces cannot follow "+".
EXCLUDED_VARIANTS = frozenset({"fast"})
# Atypical variants: a formant 1-3 moved by 20 % or more from eSpeak's default (or zeroed), or
# breathy / whispered (voicing below 40 or strong breath). They diversify training but are never
# held out, so val / test measure new voices in a natural range.
TRAIN_ONLY_VARIANTS = frozenset({
    "Alicia", "Andy", "Annie", "AnxiousAndy", "Demonic", "Diogo", "Henrique", "Hugo", "Jacky", "Lee",
    "Marco", "Michael", "Reed", "Tweaky", "UniRobot", "anika", "anikaRobot", "aunty", "belinda", "boris",
    "caleb", "david", "f1", "f3", "f4", "grandma", "gustave", "ian", "kaukovalta", "linda", "m5",
    "marcelo", "michel", "miguel", "norbert", "shelby", "steph", "steph2", "steph3", "travis",
    "whisper", "whisperf", "zac",
})

# Per-utterance draws: uniform ranges (eSpeak units: pitch/range 0-100, rate in words/minute,
# volume in % of default amplitude), SNR in dB, centre shift as a fraction of the free space.
PITCH = (20, 80)
PITCH_RANGE = (20, 90)
RATE_WPM = (130, 230)
VOLUME = (60, 140)
SNR_DB = (10.0, 30.0)
NOISE_KINDS = ("white", "pink")
SHIFT = (0.3, 0.7)

def recipe() -> dict:
    """JSON-able description of how the dataset is generated (for cache keys and metadata)."""
    return {
        "espeak_version": espeak.version(),
        "voices": available_voices(),
        "train_only_voices": sorted(TRAIN_ONLY_VARIANTS),
        "split_fractions": SPLIT_FRACTIONS,
        "repeats": REPEATS,
        "words": WORDS,
        "ranges": {"pitch": PITCH, "pitch_range": PITCH_RANGE, "rate_wpm": RATE_WPM, "volume": VOLUME,
                   "snr_db": SNR_DB, "noise": NOISE_KINDS, "shift": SHIFT},
    }


def available_voices() -> list[str]:
    """Sorted eSpeak voice variants usable as speakers."""
    return [v for v in espeak.variants() if v not in EXCLUDED_VARIANTS and v.isprintable() and " " not in v]


def split_voices(voices: list[str], seed: int) -> dict[str, list[str]]:
    """Seeded, disjoint voice split, about 70 / 15 / 15 % for train / val / test (sorted lists).

    Val and test voices are drawn from the variants not in TRAIN_ONLY_VARIANTS.
    """
    eligible = [v for v in voices if v not in TRAIN_ONLY_VARIANTS]
    n_test = max(1, round(SPLIT_FRACTIONS["test"] * len(voices)))
    n_val = max(1, round(SPLIT_FRACTIONS["val"] * len(voices)))
    if len(eligible) < n_test + n_val + (len(voices) == len(eligible)):
        raise NeurostackError(f"synth-digits needs more voices to split into train / val / test, got {voices}")
    order = np.random.default_rng([seed, 0x5EED]).permutation(len(eligible))
    held = [eligible[i] for i in order[: n_test + n_val]]
    return {
        "train": sorted(set(voices) - set(held)),
        "val": sorted(held[n_test:]),
        "test": sorted(held[:n_test]),
    }


@dataclass(frozen=True)
class Utterance:
    """Everything needed to render one clip; `uid` seeds eSpeak's random generators and the noise."""

    label: int
    voice: str
    pitch: int
    pitch_range: int
    rate: int
    volume: int
    noise: str
    snr_db: float
    shift: float
    uid: int

    @property
    def lang(self) -> str:
        return LANGUAGES[self.label // 10]

    @property
    def text(self) -> str:
        return WORDS[self.lang][self.label % 10]


def plan(voices: dict[str, list[str]], seed: int, repeats: int = REPEATS) -> dict[str, list[Utterance]]:
    """The utterances of each split: every voice says every class `repeats` times."""
    out: dict[str, list[Utterance]] = {}
    for split_index, split in enumerate(("train", "val", "test")):
        utts = []
        for voice in voices[split]:
            # one generator per voice, so a voice's utterances do not depend on the others
            voice_key = int.from_bytes(hashlib.sha256(voice.encode()).digest()[:4], "little")
            rng = np.random.default_rng([seed, split_index, voice_key])
            for label in range(len(CLASSES)):
                for _ in range(repeats):
                    utts.append(Utterance(
                        label=label, voice=voice,
                        pitch=int(rng.integers(PITCH[0], PITCH[1] + 1)),
                        pitch_range=int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1)),
                        rate=int(rng.integers(RATE_WPM[0], RATE_WPM[1] + 1)),
                        volume=int(rng.integers(VOLUME[0], VOLUME[1] + 1)),
                        noise=NOISE_KINDS[int(rng.integers(len(NOISE_KINDS)))],
                        snr_db=float(np.round(rng.uniform(*SNR_DB), 2)),
                        shift=float(np.round(rng.uniform(*SHIFT), 3)),
                        uid=int(rng.integers(2**62)),
                    ))
        out[split] = utts
    return out


def _noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS white or pink (1/f power) noise, float64 (n,)."""
    white = rng.standard_normal(n)
    if kind == "pink":
        spectrum = np.fft.rfft(white)
        f = np.arange(spectrum.size)
        spectrum[1:] /= np.sqrt(f[1:])
        spectrum[0] = 0.0
        white = np.fft.irfft(spectrum, n)
    return white / (np.sqrt(np.mean(white**2)) + 1e-12)


def _request(utt: Utterance) -> dict:
    return dict(text=utt.text, voice=f"{utt.lang}+{utt.voice}", rate=utt.rate, pitch=utt.pitch,
                pitch_range=utt.pitch_range, volume=utt.volume, seed=utt.uid)


def mix(utt: Utterance, pcm: np.ndarray, sr: int, cfg: FeatureConfig) -> np.ndarray:
    """The clip of `utt` from its eSpeak samples `pcm` (int16 at `sr` Hz): speech trimmed and
    resampled, placed at its shift in cfg.duration_s of noise at its SNR.
    Returns float32 (cfg.n_samples,) at cfg.sample_rate Hz.
    """
    speech = pcm.astype(np.float32) / 32768.0
    if speech.size and np.abs(speech).max() > 0:
        speech, _ = librosa.effects.trim(speech, top_db=60, frame_length=256, hop_length=64)
    if speech.size < 16 or not np.abs(speech).max() > 0:
        raise NeurostackError(f"eSpeak NG produced silence for {utt.text!r} with voice {utt.lang}+{utt.voice}")
    speech = librosa.resample(speech, orig_sr=sr, target_sr=cfg.sample_rate)
    n = cfg.n_samples
    speech = fit_length(speech, n) if speech.size > n else speech
    clip = np.zeros(n, dtype=np.float64)
    offset = int(round((n - speech.size) * utt.shift))
    clip[offset : offset + speech.size] = speech
    power = float(np.mean(speech.astype(np.float64) ** 2))
    rng = np.random.default_rng(utt.uid)
    clip += _noise(utt.noise, n, rng) * np.sqrt(power / 10 ** (utt.snr_db / 10))
    return clip.astype(np.float32)


def build(
    cfg: FeatureConfig,
    seed: int = 0,
    *,
    limit: int | None = None,
    voices: list[str] | None = None,
    repeats: int = REPEATS,
    progress: bool = True,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict]:
    """Synthesise and featurise the dataset.

    `voices` restricts the speakers (default: all `available_voices()`), `repeats` is utterances
    per (voice, class), `limit` caps utterances per split. Returns (x, y, meta): x[split] float32
    (N, cfg.n_frames, cfg.n_bins), y[split] int64 (N,), meta a JSON-able dict.
    """
    all_voices = available_voices()
    if voices is not None:
        unknown = sorted(set(voices) - set(all_voices))
        if unknown:
            raise NeurostackError(f"synth-digits: unknown voices {unknown}; known: {', '.join(all_voices)}")
        all_voices = sorted(set(voices))
    by_split = split_voices(all_voices, seed)
    full = plan(by_split, seed, repeats)
    x: dict[str, np.ndarray] = {}
    y: dict[str, np.ndarray] = {}
    speakers: dict[str, list[str]] = {}
    chosen = {split: seeded_subset(list(range(len(utts))), limit, seed) for split, utts in full.items()}
    check_dataset_memory(sum(map(len, chosen.values())), cfg, "synth-digits")
    with progress_bar(sum(map(len, chosen.values())), "synthesising synth-digits", progress) as advance:
        for split, utts in full.items():
            wanted = set(chosen[split])
            groups: dict[tuple[str, str], list[int]] = {}
            for i, u in enumerate(utts):
                groups.setdefault((u.voice, u.lang), []).append(i)
            feats = {}
            # eSpeak output depends on the utterances before it in an engine's life, so each
            # (voice, language) group is spoken by a fresh engine in plan order, up to its last
            # wanted utterance: an utterance's features do not depend on `limit`.
            for group in groups.values():
                while group and group[-1] not in wanted:
                    group.pop()
                if not group:
                    continue
                pcms, sr = espeak.speak_many([_request(utts[i]) for i in group])
                for i, pcm in zip(group, pcms):
                    if i in wanted:
                        feats[i] = audio_features(mix(utts[i], pcm, sr, cfg), cfg.sample_rate, cfg)
                        advance()
            order = chosen[split]
            x[split] = (np.stack([feats[i] for i in order]) if order
                        else np.zeros((0, cfg.n_frames, cfg.n_bins), np.float32))
            y[split] = np.array([utts[i].label for i in order], dtype=np.int64)
            speakers[split] = sorted({utts[i].voice for i in order})
    meta = {
        "espeak_version": espeak.version(),
        "repeats": repeats,
        "speakers": speakers,
        "voices_split": by_split,
        "ranges": recipe()["ranges"],
    }
    return x, y, meta

