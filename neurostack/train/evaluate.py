"""Evaluate a model on a split: predictions and the confusion matrix."""

from __future__ import annotations

import numpy as np
import torch

from neurostack.frontend.models import SpikingClassifier
from neurostack.inputs import InputSpec, encode_for_eval
from neurostack.train.inputs import to_time_major


@torch.no_grad()
def predict(model: SpikingClassifier, x: np.ndarray, *, spec: InputSpec, seed: int,
            device: torch.device) -> np.ndarray:
    """Class predictions (N,) for features x (N, T, F), encoded as at training time with the evaluation seed."""
    model.eval()
    preds = [model(to_time_major(xb, device)).argmax(dim=1).cpu().numpy()
             for _, xb in encode_for_eval(x, spec, seed, model.config.input_shape)]
    return np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) counts; rows are true classes."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y_true.astype(int), y_pred.astype(int)), 1)
    return cm
