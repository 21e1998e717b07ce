"""Our neuron step functions are Norse's LIFBox / LIBox updates, bit for bit, with working surrogates."""

import pytest
import torch
from norse.torch.functional.leaky_integrator_box import LIBoxParameters, LIBoxState, li_box_feed_forward_step
from norse.torch.functional.lif_box import LIFBoxFeedForwardState, LIFBoxParameters, lif_box_feed_forward_step

from neurostack.errors import NeurostackError
from neurostack.frontend.functional import LIFParameters, LIParameters, li_step, lif_step
from neurostack.frontend.surrogate import SURROGATES, spike_function


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lif_step_matches_norse_lifbox_exactly(dtype):
    g = torch.Generator().manual_seed(0)
    n = 64
    p_norse = LIFBoxParameters(tau_mem_inv=torch.full((n,), 1 / 0.02, dtype=dtype), v_leak=torch.zeros(n, dtype=dtype),
                               v_th=torch.full((n,), 0.5, dtype=dtype), v_reset=torch.zeros(n, dtype=dtype),
                               method="super", alpha=100.0)
    p = LIFParameters(p_norse.tau_mem_inv, p_norse.v_leak, p_norse.v_th, p_norse.v_reset)
    v_ours = v_norse = torch.zeros(n, dtype=dtype)
    total = 0
    for _ in range(300):
        x = torch.randn(n, generator=g, dtype=dtype) * 8
        z_ours, v_ours = lif_step(x, v_ours, p, 1e-3, spike_function("superspike"))
        z_norse, s = lif_box_feed_forward_step(x, LIFBoxFeedForwardState(v_norse), p_norse, dt=1e-3)
        v_norse = s.v
        assert torch.equal(z_ours, z_norse) and torch.equal(v_ours, v_norse)
        total += int(z_ours.sum())
    assert total > 100  # the comparison saw real spiking


def test_li_step_matches_norse_libox_exactly():
    g = torch.Generator().manual_seed(1)
    p = LIBoxParameters(tau_mem_inv=torch.full((10,), 50.0), v_leak=torch.full((10,), 0.1))
    v_ours = v_norse = torch.zeros(10)
    for _ in range(100):
        x = torch.randn(10, generator=g)
        v_ours = li_step(x, v_ours, LIParameters(p.tau_mem_inv, p.v_leak), 1e-3)
        v_norse, _ = li_box_feed_forward_step(x, LIBoxState(v_norse), p, dt=1e-3)
        assert torch.equal(v_ours, v_norse)


@pytest.mark.parametrize("name", SURROGATES)
def test_surrogates_spike_strictly_above_threshold_and_pass_gradients(name):
    x = torch.tensor([-0.5, -1e-6, 0.0, 1e-6, 0.5], requires_grad=True)
    z = spike_function(name)(x)
    assert z.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]
    z.sum().backward()
    assert torch.all(x.grad > 0) and torch.all(torch.isfinite(x.grad))
    assert x.grad[2] >= x.grad[0]  # the surrogate peaks at the threshold


def test_unknown_surrogate_is_a_user_error():
    with pytest.raises(NeurostackError, match="unknown surrogate"):
        spike_function("nope")
