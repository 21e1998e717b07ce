"""The model zoo: spikformer, adlif and delay build, run time-major, record their inner nodes, and learn."""

import pytest
import torch

from neurostack.errors import NeurostackError
from neurostack.frontend.functional import (AdLIFParameters, LIFParameters, LIParameters, adlif_step, delay_kernel,
                                            delayed_linear, li_step, lif_step)
from neurostack.frontend.layers import AdLIFRecurrent, DelayedLinear
from neurostack.frontend.models import ModelConfig, build_model, calibrate_init, count_parameters, model_input_shape
from neurostack.frontend.surrogate import spike_function

ZOO = [("spikformer", (10, 8), 4), ("adlif", (8,), 30), ("delay", (8,), 30)]


def _config(name, shape, **kw):
    kw = {"n_classes": 3, "hidden": (16,), "dim": 16, "depth": 1, "heads": 2, "max_delay": 6, **kw}
    return ModelConfig(name=name, input_shape=shape, **kw)


@pytest.mark.parametrize("name,shape,steps", ZOO)
def test_zoo_models_run_and_record_their_nodes(name, shape, steps):
    model = build_model(_config(name, shape))
    x = torch.rand(steps, 5, *shape)
    assert model(x).shape == (5, 3)
    v, outs, volts = model.eval().run(x, record=True, record_voltages=True)
    assert v.shape == (steps, 5, 3)
    spiking = [n for n in outs if "lif" in n]
    assert spiking and all(set(outs[n].unique().tolist()) <= {0.0, 1.0} for n in spiking)
    assert all(volts[n].shape == outs[n].shape for n in spiking if n in volts)
    assert count_parameters(model) > 0
    expected = {"spikformer": {"embed", "lif_embed", "b1_q_lif", "b1_k_lif", "b1_v_lif", "b1_attn_lif", "b1_proj_lif",
                               "b1_mlp1_lif", "b1_mlp2_lif", "pool", "fc_out"},
                "adlif": {"fc1", "lif1", "rec1", "adapt1", "fc_out", "li_out"},
                "delay": {"fc1", "lif1", "fc_out", "li_out"}}[name]
    assert expected <= set(outs)


def test_readout_rule_is_mean_for_spikformer_and_max_for_the_others():
    assert build_model(_config("spikformer", (10, 8))).readout == "mean"
    assert build_model(_config("adlif", (8,))).readout == "max"
    assert build_model(_config("adlif", (8,), readout="mean")).readout == "mean"
    model = build_model(_config("spikformer", (10, 8))).eval()
    x = torch.rand(4, 2, 10, 8)
    assert torch.allclose(model(x), model.run(x)[0].mean(0))


@pytest.mark.parametrize("name,shape,steps", ZOO)
def test_a_few_gradient_steps_reduce_the_loss_on_a_tiny_batch(name, shape, steps):
    torch.manual_seed(0)
    model = build_model(_config(name, shape, dropout=0.0))
    x = torch.rand(steps, 12, *shape) * 0.3
    y = torch.arange(12) % 3
    for c in range(3):  # class c: a bump on its own third of the inputs
        x[..., c * shape[-1] // 3:(c + 1) * shape[-1] // 3][:, y == c] += 0.7
    calibrate_init(model, x, 2.0)  # as training does (ModelConfig.init_std)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(), loss.backward(), opt.step()
        losses.append(loss.item())
    assert sum(losses[-3:]) / 3 < 0.9 * sum(losses[:3]) / 3, losses


def test_spikformer_needs_the_image_view_and_heads_that_divide_dim():
    assert model_input_shape("spikformer", "image", 50, 40, 2000) == (50, 40)
    assert model_input_shape("adlif", "sequence", 100, 40, 40) == (40,)
    with pytest.raises(NeurostackError, match="view image"):
        model_input_shape("spikformer", "sequence", 100, 40, 40)
    with pytest.raises(NeurostackError, match="multiple of heads"):
        build_model(ModelConfig(name="spikformer", input_shape=(10, 8), dim=10, heads=4))


def test_config_round_trips_with_the_new_fields():
    cfg = _config("delay", (8,), tau_adapt=0.3, recurrent=False)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg


# --------------------------------------------------------------------------------------------------- adlif
def test_adlif_step_is_lif_then_li_of_minus_b_z():
    g = torch.Generator().manual_seed(0)
    n, dt = 32, 1e-3
    p = AdLIFParameters(tau_mem_inv=torch.full((n,), 100.0), tau_adapt_inv=torch.full((n,), 10.0),
                        b=torch.full((n,), 30.0), v_leak=torch.zeros(n), v_th=torch.ones(n), v_reset=torch.zeros(n))
    fn = spike_function("atan")
    v = a = v2 = a2 = torch.zeros(n)
    total = 0
    for _ in range(200):
        i = torch.rand(n, generator=g) * 4
        z, v, a = adlif_step(i, v, a, p, dt, fn)
        z2, v2 = lif_step(i + a2, v2, LIFParameters(p.tau_mem_inv, p.v_leak, p.v_th, p.v_reset), dt, fn)
        a2 = li_step(-p.b * z2, a2, LIParameters(p.tau_adapt_inv, torch.zeros(n)), dt)
        assert torch.equal(z, z2) and torch.equal(v, v2) and torch.equal(a, a2)
        total += int(z.sum())
    assert total > 50 and float(a.max()) <= 0  # it spiked, and adaptation only ever inhibits


def test_adaptation_slows_firing_under_a_constant_input():
    layer = AdLIFRecurrent(20, 1e-3, tau_mem=(0.01, 0.01), tau_adapt=(0.1, 0.1), jump_init=0.5, recurrent=False)
    with torch.no_grad():
        layer.jump.fill_(0.5)
        z = layer(torch.full((200, 1, 20), 3.0))
        early, late = z[:30].mean(), z[-30:].mean()
        layer.jump.zero_()
        z0 = layer(torch.full((200, 1, 20), 3.0))
    assert late < early and z0[-30:].mean() > late


def test_adlif_recurrence_feeds_last_steps_spikes_back():
    torch.manual_seed(0)
    layer = AdLIFRecurrent(6, 1e-3, tau_mem=(0.005, 0.02), tau_adapt=(0.05, 0.2))
    x = torch.rand(40, 3, 6) * 6
    outputs: dict = {}
    voltages: dict = {}
    with torch.no_grad():
        z = layer(x, outputs, voltages)
        assert torch.allclose(outputs["rec1"], layer.rec(z))  # rec1 at step t is W_rec z_t, the input of step t+1
        assert set(voltages) == {"lif1", "adapt1"}
        # the same layer with the recurrent weights zeroed behaves differently: the loop is live
        layer.rec.weight.mul_(8)
        z_strong = layer(x)
        layer.rec.weight.zero_()
        assert not torch.equal(layer(x), z_strong)
    # gradients reach the recurrent weights and the learnable time constants
    layer.rec.weight.data.normal_(0, 0.5)
    layer(x).sum().backward()
    for p in (layer.rec.weight, layer.log_tau_mem, layer.log_tau_adapt, layer.jump):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_adlif_time_constants_stay_in_range():
    layer = AdLIFRecurrent(4, 1e-3, tau_mem=(0.005, 0.025), tau_adapt=(0.04, 0.2))
    with torch.no_grad():
        layer.log_tau_mem.fill_(-20.0)
        layer.jump.fill_(-1.0)
    p = layer.parameters_tuple()
    assert torch.all(p.tau_mem_inv * 1e-3 <= 1.0) and torch.all(p.b == 0)


# --------------------------------------------------------------------------------------------------- delay
def test_hard_delays_shift_each_synapse_by_whole_steps():
    torch.manual_seed(0)
    t, b, n_in, n_out, d_max = 12, 2, 3, 4, 5
    x = torch.rand(t, b, n_in)
    w = torch.randn(n_out, n_in)
    delay = torch.rand(n_out, n_in) * (d_max - 1)
    y = delayed_linear(x, w, None, delay, d_max, None)
    d = torch.round(delay).long()
    ref = torch.zeros(t, b, n_out)
    for o in range(n_out):
        for i in range(n_in):
            k = int(d[o, i])
            ref[k:, :, o] += w[o, i] * x[:t - k, :, i]
    assert torch.allclose(y, ref, atol=1e-6)


def test_delay_kernel_is_a_normalised_gaussian_that_sharpens():
    delay = torch.tensor([[2.3]])
    wide, narrow = delay_kernel(delay, 8, 2.0), delay_kernel(delay, 8, 0.3)
    assert torch.allclose(wide.sum(-1), torch.ones(1, 1)) and narrow[0, 0].argmax() == 2
    assert narrow.max() > wide.max()
    assert delay_kernel(delay, 8, None)[0, 0].tolist() == [0, 0, 1, 0, 0, 0, 0, 0]


def test_delays_learn_and_round_to_integers():
    torch.manual_seed(0)
    layer = DelayedLinear(3, 2, max_delay=8)
    layer.set_progress(0.0)
    assert layer.sigma == layer.sigma_init
    x = torch.rand(20, 4, 3)
    layer.train()
    layer(x).pow(2).sum().backward()
    assert layer.delay.grad is not None and layer.delay.grad.abs().sum() > 0  # the relaxation passes gradients
    layer.set_progress(0.5)
    assert layer.sigma_min < layer.sigma < layer.sigma_init
    layer.set_progress(0.9)
    assert layer.sigma is None  # the last epochs train the hard, whole-step delays
    with torch.no_grad():
        y_eval = layer.eval()(x)
        layer.round_delays()
        assert torch.equal(layer.delay, torch.round(layer.delay))
        assert float(layer.delay.min()) >= 0 and float(layer.delay.max()) <= 7
        assert torch.equal(layer(x), y_eval)  # evaluation already used the rounded delays
        assert torch.equal(layer.integer_delays(), layer.delay.long())


def test_delay_model_rounds_all_its_delays():
    model = build_model(_config("delay", (8,), hidden=(8, 8)))
    model.round_delays()
    delays = [m.delay for m in model.modules() if isinstance(m, DelayedLinear)]
    assert len(delays) == 2 and all(torch.equal(d, torch.round(d)) for d in delays)


def test_delay_scale_learns_the_delays_faster_and_rounds_the_same():
    torch.manual_seed(0)
    x = torch.rand(12, 4, 3)
    moved = {}
    for k in (1.0, 10.0):
        torch.manual_seed(1)
        layer = DelayedLinear(3, 2, max_delay=8, delay_scale=k)
        assert float(layer.delays().max()) <= 7 and float(layer.delay.max()) <= 7 / k
        start = layer.delays().detach().clone()
        opt = torch.optim.Adam(layer.parameters(), lr=1e-2)
        for _ in range(5):
            opt.zero_grad()
            layer(x).square().sum().backward()
            opt.step()
        moved[k] = float((layer.delays().detach() - start).abs().max())
        layer.eval()
        with torch.no_grad():
            y = layer(x)
            assert torch.equal(layer.integer_delays(), torch.round(layer.delays()).clamp(0, 7).long())
            layer.round_delays()
            assert torch.equal(layer(x), y)  # evaluation already used the rounded delays
    assert moved[10.0] > 5 * moved[1.0]  # Adam's steps are per parameter: k times larger in steps
