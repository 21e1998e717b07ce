"""How float32 spike differences are explained: near the threshold, downstream of an earlier one, or not."""

import numpy as np

from neurostack.parity import explain_differences


def test_differences_are_classified_near_threshold_downstream_or_unexplained():
    # two nodes, 2 samples, 3 steps, 2 neurons; threshold 1.0
    shape = (2, 3, 2)
    ref = {"a": np.zeros(shape), "b": np.zeros(shape)}
    got = {"a": np.zeros(shape), "b": np.zeros(shape)}
    ref_v = {"a": np.full(shape, 0.2), "b": np.full(shape, 0.2)}
    got_v = {"a": np.full(shape, 0.2), "b": np.full(shape, 0.2)}
    th = {"a": np.ones(2), "b": np.ones(2)}
    # sample 0, step 1, node a: PyTorch spiked, the simulator sat 3e-8 below the threshold -> rounding
    ref["a"][0, 1, 0] = 1
    got_v["a"][0, 1, 0] = 1.0 - 3e-8
    # sample 0, step 1, node b (a later node, same step): far from threshold but after the first difference
    got["b"][0, 1, 1] = 1
    ref_v["b"][0, 1, 1] = 0.4
    # sample 1, step 0, node a: first difference of its sample and far from the threshold -> unexplained
    got["a"][1, 0, 1] = 1
    ref_v["a"][1, 0, 1] = 0.5
    report = explain_differences(ref, got, ref_v, got_v, th, tolerance=1e-6)
    assert (report["near_threshold"], report["downstream"], report["unexplained"]) == (1, 1, 1)
    assert report["unexplained_examples"] == [{"node": "a", "sample": 1, "step": 0, "neuron": [1],
                                               "distance_to_threshold": 0.5}]
