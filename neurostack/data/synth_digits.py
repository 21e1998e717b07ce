"""synth-digits: English and German spoken digits synthesised offline with eSpeak NG.

The eSpeak NG shared library bundled by `espeakng-loader` is driven through ctypes (no system
package, no subprocess). 20 classes, "en-0".."en-9" then "de-0".."de-9" (label = lang * 10 + digit,
as in SHD). A speaker is an eSpeak voice variant (voices/!v: m1..m8, f1..f5, klatt.., named voices);
each utterance draws its own pitch, pitch range, speaking rate, volume, time shift and background
noise (white or pink at 5-30 dB SNR). Validation and test voices never occur in training.
Everything is drawn from the seed, so the same seed gives byte-identical features.
"""

from __future__ import annotations

import _ctypes
import ctypes
import hashlib
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

import librosa
import numpy as np

from neurostack.data._progress import progress_bar
from neurostack.data._subset import seeded_subset
from neurostack.data.features import FeatureConfig, audio_features, fit_length
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
# Atypical variants (a formant 1-3 moved by more than 35 % or zeroed, or unvoiced / whispered):
# they diversify training but are never held out, so val/test measure natural-sounding new voices.
TRAIN_ONLY_VARIANTS = frozenset({
    "Alicia", "Andy", "AnxiousAndy", "Jacky", "Lee", "Marco", "Michael", "Tweaky", "boris", "caleb",
    "gustave", "kaukovalta", "marcelo", "shelby", "travis", "whisper", "whisperf", "zac",
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

# eSpeak NG C API constants (speak_lib.h).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


def _data_path() -> Path:
    try:
        import espeakng_loader

        return Path(espeakng_loader.get_data_path())
    except Exception as exc:
        raise NeurostackError(f"cannot find the eSpeak NG data of espeakng-loader ({exc})") from None


class _Espeak:
    """One freshly loaded and initialised eSpeak NG library.

    eSpeak keeps synthesis state in C globals (pitch flutter phase, gain control, resonators,
    random generators) that carry over from one utterance to the next, so the same call gives
    different samples depending on what was said before. Loading the library anew for each
    utterance (about 1 ms) and unloading it afterwards makes every utterance depend only on its
    own arguments. Use as a context manager; not thread-safe (callers hold `_LOCK`).
    """

    def __init__(self) -> None:
        import espeakng_loader

        self.data_path = _data_path()
        try:
            lib = ctypes.CDLL(espeakng_loader.get_library_path())
        except OSError as exc:
            raise NeurostackError(f"cannot load the eSpeak NG library of espeakng-loader ({exc})") from None
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p
        self._lib = lib
        self._libc = ctypes.CDLL(None)  # breathy voices draw from libc rand()
        self.sample_rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, str(self.data_path).encode(), _INITIALIZE_DONT_EXIT
        )
        if self.sample_rate <= 0:
            self.close()
            raise NeurostackError(f"eSpeak NG failed to initialise with data at {self.data_path}")
        self.version = lib.espeak_Info(None).decode()
        self._chunks: list[np.ndarray] = []
        self._callback = _SYNTH_CALLBACK(self._collect)  # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)

    def __enter__(self) -> "_Espeak":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Terminate eSpeak and unload the library so the next load starts from clean globals."""
        lib, self._lib = self._lib, None
        if lib is not None:
            if getattr(self, "sample_rate", 0) > 0:
                lib.espeak_Terminate()
            _ctypes.dlclose(lib._handle)

    def _collect(self, wav, n_samples, events) -> int:
        if n_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n_samples,)).copy())
        return 0  # 0 = continue synthesis

    def synth(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int, volume: int,
              seed: int = 0) -> np.ndarray:
        """Speak `text` with `voice` (e.g. "en+m3"); int16 samples at `self.sample_rate` Hz.

        eSpeak seeds its random generator from the clock; `seed` reseeds it (and libc's).
        """
        lib = self._lib
        lib.espeak_ng_SetRandSeed(seed % 2**31)
        self._libc.srand(ctypes.c_uint(seed % 2**31))
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise NeurostackError(f"eSpeak NG has no voice {voice!r}")
        for param, value in ((_RATE, rate), (_PITCH, pitch), (_RANGE, pitch_range), (_VOLUME, volume)):
            lib.espeak_SetParameter(param, int(value), 0)
        self._chunks = []
        data = text.encode("utf-8") + b"\0"
        err = lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
        if err != 0:
            raise NeurostackError(f"eSpeak NG failed to synthesise {text!r} with {voice!r} (error {err})")
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.int16)


_LOCK = threading.Lock()  # eSpeak is process-global: one engine at a time
_VERSION: str | None = None


def speak_many(requests: list[dict]) -> tuple[list[np.ndarray], int]:
    """Synthesise several utterances in order with one freshly loaded engine.

    Each request holds the arguments of `_Espeak.synth` (text, voice, rate, pitch, pitch_range,
    volume, seed). eSpeak's carried-over state makes each result depend on the requests before it
    in the list (and nothing else). Returns (int16 sample arrays, sample rate in Hz).
    """
    global _VERSION
    with _LOCK, _Espeak() as engine:
        _VERSION = engine.version
        return [engine.synth(**r) for r in requests], engine.sample_rate


def espeak_version() -> str:
    """Version string of the bundled eSpeak NG library."""
    global _VERSION
    if _VERSION is None:
        with _LOCK, _Espeak() as engine:
            _VERSION = engine.version
    return _VERSION


def available_voices() -> list[str]:
    """Sorted eSpeak voice variants usable as speakers (files in espeak-ng-data/voices/!v)."""
    folder = _data_path() / "voices" / "!v"
    names = sorted(p.name for p in folder.iterdir() if p.is_file())
    return [n for n in names if n not in EXCLUDED_VARIANTS and n.isprintable() and " " not in n]


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
    """Everything needed to render one clip; `uid` seeds its noise."""

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
    """The clip of `utt` from its eSpeak samples `pcm` (int16 at `sr` Hz): speech trimmed, resampled,
    placed at its shift in cfg.duration_s of noise at its SNR. float32 (cfg.n_samples,) at cfg.sample_rate Hz.
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
    with progress_bar(sum(map(len, chosen.values())), "synthesising synth-digits", progress) as advance:
        for split, utts in full.items():
            wanted = set(chosen[split])
            feats = {}
            # eSpeak state carries over between utterances, so each (voice, language) group is
            # synthesised by a fresh engine in plan order, up to its last wanted utterance.
            for key in dict.fromkeys((u.voice, u.lang) for u in utts):
                group = [i for i, u in enumerate(utts) if (u.voice, u.lang) == key]
                while group and group[-1] not in wanted:
                    group.pop()
                if not group:
                    continue
                pcms, sr = speak_many([_request(utts[i]) for i in group])
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
        "espeak_version": espeak_version(),
        "repeats": repeats,
        "speakers": speakers,
        "voices_split": by_split,
        "ranges": {"pitch": PITCH, "pitch_range": PITCH_RANGE, "rate_wpm": RATE_WPM, "volume": VOLUME,
                   "snr_db": SNR_DB, "noise": NOISE_KINDS, "shift": SHIFT},
    }
    return x, y, meta


def utterance_dict(utt: Utterance) -> dict:
    """JSON-able description of one utterance."""
    return asdict(utt)
