"""Helpers shared by the training tests (imported as `train_helpers`; pytest puts tests/train on sys.path)."""

from __future__ import annotations

from neurostack.train.session import resolve_config


def resolve(**kw):
    """resolve_config with the `train` command's defaults (synth-digits, mlp, CPU), overridden by kw."""
    base = dict(data="synth-digits", split="standard", model_name="mlp", epochs=None, batch_size=64, lr=None,
                hidden=None, view=None, encoder="none", steps=None, steps_per_frame=1, feature_kind="mel", n_bins=40,
                surrogate="atan", device="cpu", seed=0, cache_dir=None)
    base.update(kw)
    return resolve_config(**base)
