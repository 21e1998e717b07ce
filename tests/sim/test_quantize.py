"""Weight rounding to a chip's precision."""

import nir
import numpy as np
import pytest

from neurostack.errors import NeurostackError
from neurostack.sim.quantize import quantize_array, quantize_graph


def test_weights_round_to_signed_integer_levels_of_one_scale():
    w = np.array([-1.0, -0.26, 0.0, 0.1, 0.5, 0.74, 1.0])
    q, scale = quantize_array(w, bits=3)  # levels -3..3, scale 1/3
    assert scale == pytest.approx(1 / 3)
    np.testing.assert_allclose(q / scale, [-3, -1, 0, 0, 2, 2, 3])


def test_graph_copy_is_quantised_and_the_original_kept():
    w = np.linspace(-1, 1, 12).reshape(3, 4)
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([4])}),
                                "fc": nir.Affine(weight=w.copy(), bias=np.array([0.05, 0.6, -0.3])),
                                "output": nir.Output(output_type={"output": np.array([3])})},
                         edges=[("input", "fc"), ("fc", "output")])
    q, report = quantize_graph(graph, bits=2)  # levels -1, 0, 1
    np.testing.assert_array_equal(graph.nodes["fc"].weight, w)
    assert set(np.unique(q.nodes["fc"].weight)) <= {-1.0, 0.0, 1.0}
    np.testing.assert_allclose(q.nodes["fc"].bias, [0.0, 1.0, -0.0])
    (entry,) = report
    assert entry.name == "fc" and entry.bits == 2 and entry.scale == 1.0
    assert entry.zeroed == int(np.count_nonzero(np.abs(w) < 0.5))


def test_one_bit_is_refused():
    with pytest.raises(NeurostackError, match="at least 2"):
        quantize_array(np.ones(3), 1)
