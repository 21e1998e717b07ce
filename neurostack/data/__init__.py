"""The data layer: datasets, per-utterance audio features and spike encoders (numpy only, no torch).

    >>> ds = load_dataset("synth-digits")            # or "fsdd:PATH", "shd:PATH", "ssc:PATH"
    >>> ds.x["train"].shape                          # (N, T, F) float32
    >>> spikes = encode("rate", ds.x["test"][0], rng=0)
"""

from neurostack.data.datasets import DATASET_NAMES, Dataset, load_dataset
from neurostack.data.encoders import ENCODERS, encode, encoded_shape
from neurostack.data.features import FeatureConfig, audio_features, file_features

__all__ = [
    "DATASET_NAMES",
    "ENCODERS",
    "Dataset",
    "FeatureConfig",
    "audio_features",
    "encode",
    "encoded_shape",
    "file_features",
    "load_dataset",
]
