"""Training-time data augmentation: pure functions of (batch, rng), applied to the features of a batch.

Every function takes features `x` (B, frames, bins) as numpy (log-mel / MFCC scaled to [0, 1], or spike
counts) and a `numpy.random.Generator`, and returns a new array of the same shape; nothing is changed in
place. They act before encoding, so with a spike encoder the spikes are drawn from the augmented features
(for the sequence view, a frame is one input step: mixing or cutting frames mixes spike frames).

- `time_shift`   shift each sample by up to +-max_shift frames (zero-filled)
- `time_stretch` resample each sample's time axis by a factor in [1 - s, 1 + s] around its centre
- `freq_shift`   shift each sample's frequency axis by up to +-s bins (fractional, edge bands repeated): on
                 the mel scale a vocal-tract-length change (all formants scaled by a factor) is close to a
                 shift, so this imitates a different voice (mel features; not meaningful for MFCC)
- `vtlp`         vocal-tract-length perturbation (Jaitly & Hinton 2013): warp each sample's frequency axis by a
                 factor a in [1 - s, 1 + s] (f -> a f, piecewise linear so that the top of the band stays put),
                 on the mel band centres of the features (a longer or shorter vocal tract: another speaker)
- `tilt`         multiply each sample's bands by a random linear spectral tilt 1 + t (2k/(n-1) - 1),
                 |t| <= s: another microphone, room or voice colour (silence, 0, stays 0)
- `time_mask`, `freq_mask`  SpecAugment: zero `n` bands of up to `width` frames / bins
- `add_noise`    Gaussian noise of standard deviation up to `std`, clipped at 0
- `mixup`, `cutmix`  blend two samples (mixup) or paste a span of frames of one into another (cutmix); the
                 label becomes the pair (y_a, y_b) with weight lam on y_a

`augment_batch` applies what an `AugmentConfig` switches on, in that order. Each random choice comes from the
generator it is given, so a batch's augmentation is reproducible from the loop's (seed, epoch) seeding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

AUGMENTATIONS = ("time_shift", "time_stretch", "freq_shift", "vtlp", "tilt", "time_mask", "freq_mask", "noise", "mixup",
                 "cutmix")


@dataclass
class AugmentConfig:
    """Which augmentations a training run uses (0 switches one off). Frames and bins are feature frames/bins.

    time_shift: max shift, frames. time_stretch: max relative stretch (0.1 = +-10 %). freq_shift: max shift, bins.
    vtlp: max relative frequency warp (0.1: each sample's frequencies scaled by a factor in [0.9, 1.1]).
    tilt: max spectral tilt (0.3: the top band's gain varies by +-30 % against the middle's).
    time_mask / freq_mask: number of masks; mask_width / freq_mask_width: their max width (frames / bins).
    noise: max noise std. mixup / cutmix: Beta(alpha, alpha) of the mixing weight (when both are on, each batch
    uses one of them at random); mix_prob: the fraction of batches that are mixed.
    """

    time_shift: int = 4
    time_stretch: float = 0.0
    freq_shift: float = 0.0
    vtlp: float = 0.0
    tilt: float = 0.0
    time_mask: int = 0
    mask_width: int = 5
    freq_mask: int = 0
    freq_mask_width: int = 4
    noise: float = 0.0
    mixup: float = 0.0
    cutmix: float = 0.0
    mix_prob: float = 0.5

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AugmentConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    @classmethod
    def off(cls) -> "AugmentConfig":
        """No augmentation at all."""
        return cls(time_shift=0)

    def active(self) -> list[str]:
        """The names of the augmentations switched on."""
        return [name for name in AUGMENTATIONS if getattr(self, name)]


# ---------------------------------------------------------------------------------------------- time
def time_shift(x: np.ndarray, rng: np.random.Generator, max_shift: int) -> np.ndarray:
    """Random time shift of each sample by up to `max_shift` frames (zero-filled): x (B, frames, bins)."""
    if max_shift <= 0:
        return x
    out = np.zeros_like(x)
    for k, s in enumerate(rng.integers(-max_shift, max_shift + 1, size=len(x))):
        if s >= 0:
            out[k, s:] = x[k, :x.shape[1] - s]
        else:
            out[k, :s] = x[k, -s:]
    return out


def _resample(x: np.ndarray, src: np.ndarray, axis: int, fill_edge: bool) -> np.ndarray:
    """Linear interpolation of x (B, frames, bins) along `axis` (1 or 2) at positions src (B, length)."""
    n = x.shape[axis]
    lo = np.floor(src).astype(np.int64)
    w = (src - lo).astype(x.dtype)
    valid = (src >= 0) & (src <= n - 1)
    lo_c, hi_c = np.clip(lo, 0, n - 1), np.clip(lo + 1, 0, n - 1)
    shape = (len(x), -1, 1) if axis == 1 else (len(x), 1, -1)
    a = np.take_along_axis(x, lo_c.reshape(shape), axis=axis)
    b = np.take_along_axis(x, hi_c.reshape(shape), axis=axis)
    out = a * (1 - w.reshape(shape)) + b * w.reshape(shape)
    if not fill_edge:
        out = out * valid.reshape(shape).astype(x.dtype)
    return out.astype(x.dtype, copy=False)


def time_stretch(x: np.ndarray, rng: np.random.Generator, max_stretch: float) -> np.ndarray:
    """Resample each sample's time axis by a factor in [1 - s, 1 + s] about its centre (silence outside)."""
    if max_stretch <= 0:
        return x
    n = x.shape[1]
    rate = rng.uniform(1 - max_stretch, 1 + max_stretch, size=(len(x), 1))
    c = (n - 1) / 2
    src = c + (np.arange(n)[None, :] - c) / rate
    return _resample(x, src, axis=1, fill_edge=False)


def freq_shift(x: np.ndarray, rng: np.random.Generator, max_shift: float) -> np.ndarray:
    """Shift each sample's frequency axis by a random amount in [-s, s] bins (linear interpolation, the edge
    bands repeat): output band k takes the value at band k - shift."""
    if max_shift <= 0:
        return x
    n = x.shape[2]
    shift = rng.uniform(-max_shift, max_shift, size=(len(x), 1))
    src = np.arange(n)[None, :] - shift
    return _resample(x, src, axis=2, fill_edge=True)


VTLP_CUTOFF = 0.85  # the warp is f -> a f up to VTLP_CUTOFF * fmax * min(a, 1) / a, then linear to fmax -> fmax


def vtlp_source_hz(f_out: np.ndarray, alpha: np.ndarray, fmax: float) -> np.ndarray:
    """The frequency (Hz) each output frequency `f_out` takes its value from under the VTLP warp of factor
    `alpha` (broadcast): the inverse of g(f) = a f for f <= f_b, and the straight line from (f_b, a f_b) to
    (fmax, fmax) above, with f_b = VTLP_CUTOFF fmax min(a, 1) / a."""
    f_b = VTLP_CUTOFF * fmax * np.minimum(alpha, 1.0) / alpha
    low = f_out / alpha
    high = fmax - (fmax - f_out) * (fmax - f_b) / (fmax - alpha * f_b)
    return np.where(f_out <= alpha * f_b, low, high)


def vtlp(x: np.ndarray, rng: np.random.Generator, max_warp: float, fmin: float | None = None,
         fmax: float | None = None) -> np.ndarray:
    """Vocal-tract-length perturbation of mel features x (B, frames, bins): each sample's frequency axis is
    warped by a factor a uniform in [1 - max_warp, 1 + max_warp] (a > 1 moves energy to higher bands, as a
    shorter vocal tract does). Band k (centre frequency c_k of a librosa mel filterbank over [fmin, fmax] Hz,
    the features' default) takes the value, interpolated linearly between bands, at the frequency the warp
    maps onto c_k (`vtlp_source_hz`); the edge bands repeat beyond the ends. fmin / fmax default to the
    features' own (`neurostack.data.features.FeatureConfig`)."""
    if max_warp <= 0:
        return x
    import librosa

    from neurostack.data.features import FeatureConfig

    fmin = FeatureConfig.fmin if fmin is None else fmin
    fmax = FeatureConfig.fmax if fmax is None else fmax

    n = x.shape[2]
    mels = librosa.hz_to_mel(np.array([fmin, fmax]))
    step = (mels[1] - mels[0]) / (n + 1)  # band centres are n equally spaced mels strictly inside the range
    centres = librosa.mel_to_hz(mels[0] + step * np.arange(1, n + 1))
    alpha = rng.uniform(1 - max_warp, 1 + max_warp, size=(len(x), 1))
    src_hz = np.clip(vtlp_source_hz(centres[None, :], alpha, fmax), fmin, fmax)
    src = (librosa.hz_to_mel(src_hz) - mels[0]) / step - 1  # fractional band index
    return _resample(x, src, axis=2, fill_edge=True)


def tilt(x: np.ndarray, rng: np.random.Generator, max_tilt: float) -> np.ndarray:
    """Multiply band k of each sample by 1 + t (2k/(n-1) - 1), t uniform in [-max_tilt, max_tilt]."""
    if max_tilt <= 0:
        return x
    n = x.shape[2]
    t = rng.uniform(-max_tilt, max_tilt, size=(len(x), 1, 1))
    ramp = (2 * np.arange(n) / max(n - 1, 1) - 1)[None, None, :]
    return (x * (1 + t * ramp)).astype(x.dtype, copy=False)


# ---------------------------------------------------------------------------------------------- masks
def _mask(x: np.ndarray, rng: np.random.Generator, n_masks: int, max_width: int, axis: int) -> np.ndarray:
    if n_masks <= 0 or max_width <= 0:
        return x
    out = x.copy()
    size = x.shape[axis]
    for k in range(len(x)):
        for _ in range(n_masks):
            w = int(rng.integers(0, max_width + 1))
            start = int(rng.integers(0, max(size - w, 0) + 1))
            if axis == 1:
                out[k, start:start + w] = 0
            else:
                out[k, :, start:start + w] = 0
    return out


def time_mask(x: np.ndarray, rng: np.random.Generator, n_masks: int, max_width: int) -> np.ndarray:
    """Zero `n_masks` spans of up to `max_width` frames in each sample (SpecAugment time masking)."""
    return _mask(x, rng, n_masks, max_width, axis=1)


def freq_mask(x: np.ndarray, rng: np.random.Generator, n_masks: int, max_width: int) -> np.ndarray:
    """Zero `n_masks` spans of up to `max_width` bins in each sample (SpecAugment frequency masking)."""
    return _mask(x, rng, n_masks, max_width, axis=2)


def add_noise(x: np.ndarray, rng: np.random.Generator, max_std: float) -> np.ndarray:
    """Add Gaussian noise with a per-sample std drawn in [0, max_std]; clipped at 0 (features are >= 0)."""
    if max_std <= 0:
        return x
    std = rng.uniform(0, max_std, size=(len(x), 1, 1))
    return np.clip(x + std * rng.standard_normal(x.shape), 0, None).astype(x.dtype, copy=False)


# ------------------------------------------------------------------------------------------------ mixing
def mixup(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, alpha: float):
    """Blend each sample with another of the batch: lam x + (1 - lam) x[perm], lam ~ Beta(alpha, alpha).

    Returns (x, y_a, y_b, lam): train on lam * loss(y_a) + (1 - lam) * loss(y_b)."""
    lam = float(rng.beta(alpha, alpha))
    perm = rng.permutation(len(x))
    return (lam * x + (1 - lam) * x[perm]).astype(x.dtype, copy=False), y, y[perm], lam


def cutmix(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, alpha: float):
    """Paste a span of frames (a fraction 1 - lam of them, lam ~ Beta(alpha, alpha)) from another sample of
    the batch into each sample. Returns (x, y_a, y_b, lam) with lam the fraction of frames kept."""
    n = x.shape[1]
    width = int(round((1 - float(rng.beta(alpha, alpha))) * n))
    start = int(rng.integers(0, n - width + 1))
    perm = rng.permutation(len(x))
    out = x.copy()
    out[:, start:start + width] = x[perm, start:start + width]
    return out, y, y[perm], 1.0 - width / n


def augment_batch(x: np.ndarray, y: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator):
    """Apply the augmentations `cfg` switches on to a training batch x (B, frames, bins), labels y (B,).

    Returns (x, y_a, y_b, lam): the loss is lam * CE(y_a) + (1 - lam) * CE(y_b) (lam = 1, y_b = y_a when the
    batch is not mixed). With only `time_shift` on this is exactly the loop's original augmentation.
    """
    x = time_shift(x, rng, cfg.time_shift)
    x = time_stretch(x, rng, cfg.time_stretch)
    x = freq_shift(x, rng, cfg.freq_shift)
    x = vtlp(x, rng, cfg.vtlp)
    x = tilt(x, rng, cfg.tilt)
    x = add_noise(x, rng, cfg.noise)
    x = time_mask(x, rng, cfg.time_mask, cfg.mask_width)
    x = freq_mask(x, rng, cfg.freq_mask, cfg.freq_mask_width)
    kinds = [k for k in ("mixup", "cutmix") if getattr(cfg, k) > 0]
    if kinds and len(x) > 1 and rng.random() < cfg.mix_prob:
        kind = kinds[int(rng.integers(len(kinds)))] if len(kinds) > 1 else kinds[0]
        fn = mixup if kind == "mixup" else cutmix
        return fn(x, y, rng, getattr(cfg, kind))
    return x, y, y, 1.0
