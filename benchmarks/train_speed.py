"""Training speed on the CPU: time per epoch for the same spiking MLP in neurostack, snnTorch and Norse.

    python benchmarks/train_speed.py --quick                         # a few batches, to check it runs
    python benchmarks/train_speed.py --out benchmarks/RESULTS.md     # write the results into RESULTS.md

The network: FSDD-shaped mlp, 1600 inputs (40 mel bins x 40 frames, image view: the same real-valued feature
matrix at each of T = 25 steps) -> Linear 512 -> LIF (tau 5 ms, dt 1 ms, threshold 1, reset to 0) -> dropout 0.3
-> Linear 10 -> leaky readout, class scores = the readout's maximum over time; cross-entropy, AdamW (lr 2e-3,
weight decay 1e-4), batch 64, BPTT through all T steps. All engines start from the same weights (neurostack's
data-dependent init) and train on the same random batches (uniform [0, 1) features, random labels).

Engines
  * neurostack: `build_model(ModelConfig(name="mlp", ...))` (Norse LIFBox equations, atan surrogate): forward,
    loss, zero_grad, backward, optimiser step.
  * neurostack train_epoch: the real loop (`neurostack.train.loop.train_epoch`, with input encoding, the default
    augmentation and metric bookkeeping) on an FSDD-sized training set of the same shape; skipped if its API
    changed.
  * snnTorch: `snn.Leaky(beta = 1 - dt/tau = 0.8, threshold = tau/dt = 5 (the same membrane scale as ours),
    spike_grad = surrogate.atan(), reset_mechanism="zero")`, the
    readout a Leaky with reset_mechanism="none" (its membrane); written as in snnTorch's tutorials: one Linear
    call per time step ("per-step Linear"), and also with the first Linear applied to all steps at once
    ("Linear over all steps", as neurostack's TimeDistributed does), so the comparison is not about that.
  * Norse (naive): `LIFBoxCell` (SuperSpike surrogate: Norse has no atan) and `LIBoxCell` stepped in a Python loop
    with per-step Linear calls.

Epoch = `--epoch-samples` training samples (default 2000: the training part of FSDD's standard split,
2000 / 250 / 250), i.e. ceil(2000/64) = 32 batches; each figure is the best of `--repeats` timings of
`--batches` batches, scaled to an epoch. Ratios are against neurostack's core loop, measured in the same run. torch threads: `--threads` (default os.cpu_count()); on a busy machine use
`--threads 1` (multi-threaded timings then wait on descheduled threads; a warning is printed).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sim_speed import machine_info, table, write_section  # noqa: E402  (shared output helpers)

SECTION = "train_speed"
N_IN, HIDDEN, N_CLASSES, STEPS, DT, TAU = 1600, 512, 10, 25, 1e-3, 0.005


# ---------------------------------------------------------------------------------------------- models
def neurostack_model(x_init: torch.Tensor, dropout: float):
    from neurostack.frontend.models import ModelConfig, build_model, calibrate_init

    torch.manual_seed(0)
    cfg = ModelConfig(name="mlp", input_shape=(N_IN,), hidden=(HIDDEN,), n_classes=N_CLASSES, dt=DT,
                      tau_mem=TAU, tau_out=TAU, dropout=dropout, surrogate="atan")
    model = build_model(cfg)
    calibrate_init(model, x_init, cfg.init_std)
    return cfg, model


def _linears(ns_model) -> tuple[nn.Linear, nn.Linear]:
    mods = dict(zip(ns_model.stage_names, ns_model.stages))
    return mods["fc1"].module, mods["fc_out"].module


def _copy_linear(src: nn.Linear) -> nn.Linear:
    dst = nn.Linear(src.in_features, src.out_features)
    with torch.no_grad():
        dst.weight.copy_(src.weight)
        dst.bias.copy_(src.bias)
    return dst


class SnnTorchMLP(nn.Module):
    """snnTorch's tutorial style. all_steps: apply fc1 to the whole (T, B, F) input at once."""

    def __init__(self, ns_model, dropout: float, all_steps: bool):
        super().__init__()
        import snntorch as snn
        from snntorch import surrogate

        fc1, fc_out = _linears(ns_model)
        self.fc1, self.fc_out = _copy_linear(fc1), _copy_linear(fc_out)
        beta = 1.0 - DT / TAU
        # snnTorch adds the input unscaled (mem = beta mem + I), ours scales it by dt/tau: threshold tau/dt puts
        # both on the same membrane scale (what snnTorch's own NIR importer does)
        self.lif1 = snn.Leaky(beta=beta, threshold=TAU / DT, spike_grad=surrogate.atan(), reset_mechanism="zero")
        self.readout = snn.Leaky(beta=beta, spike_grad=surrogate.atan(), reset_mechanism="none")
        self.drop = nn.Dropout(dropout)
        self.all_steps = all_steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mem1 = self.lif1.init_leaky()
        mem2 = self.readout.init_leaky()
        cur1 = self.fc1(x) if self.all_steps else None
        mems = []
        for t in range(x.shape[0]):
            spk1, mem1 = self.lif1(cur1[t] if self.all_steps else self.fc1(x[t]), mem1)
            _, mem2 = self.readout(self.fc_out(self.drop(spk1)), mem2)
            mems.append(mem2)
        return torch.stack(mems).max(dim=0).values


class NorseMLP(nn.Module):
    """Norse cells stepped in a Python loop, per-step Linear calls."""

    def __init__(self, ns_model, dropout: float):
        super().__init__()
        import norse.torch as norse

        fc1, fc_out = _linears(ns_model)
        self.fc1, self.fc_out = _copy_linear(fc1), _copy_linear(fc_out)
        self.lif1 = norse.LIFBoxCell(norse.LIFBoxParameters(tau_mem_inv=torch.tensor(1.0 / TAU), method="super"),
                                     dt=DT)
        self.readout = norse.LIBoxCell(norse.LIBoxParameters(tau_mem_inv=torch.tensor(1.0 / TAU)), dt=DT)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s1 = s2 = None
        vs = []
        for t in range(x.shape[0]):
            z, s1 = self.lif1(self.fc1(x[t]), s1)
            v, s2 = self.readout(self.fc_out(self.drop(z)), s2)
            vs.append(v)
        return torch.stack(vs).max(dim=0).values


# ---------------------------------------------------------------------------------------------- timing
def time_steps(model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]], repeats: int) -> float:
    """Best, over `repeats`, of the seconds per batch of forward + loss + zero_grad + backward + AdamW step."""
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    model.train()

    def one(x, y):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    one(*batches[0])  # warm-up (allocator, optimiser state)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for x, y in batches:
            one(x, y)
        best = min(best, (time.perf_counter() - t0) / len(batches))
    return best


def time_train_epoch(n_samples: int, batch: int, repeats: int, dropout: float) -> tuple[float, str]:
    """Seconds per batch of neurostack's real `train_epoch` over n_samples FSDD-shaped samples."""
    from neurostack.frontend.models import ModelConfig, build_model, calibrate_init
    from neurostack.inputs import encode_batch
    from neurostack.train.config import TrainConfig
    from neurostack.train.inputs import to_time_major
    from neurostack.train.loop import make_optimiser, train_epoch

    cfg = TrainConfig(data="fsdd:benchmark", view="image", encoder="none", steps=STEPS, batch_size=batch,
                      model=ModelConfig(name="mlp", input_shape=(N_IN,), hidden=(HIDDEN,), n_classes=N_CLASSES,
                                        dt=DT, tau_mem=TAU, tau_out=TAU, dropout=dropout), epochs=1, device="cpu")
    rng = np.random.default_rng(0)
    x = rng.random((n_samples, 40, 40), dtype=np.float32)
    y = rng.integers(0, N_CLASSES, n_samples)
    torch.manual_seed(0)
    model = build_model(cfg.model)
    calibrate_init(model, to_time_major(encode_batch(x[:64], cfg.input_spec(), rng, cfg.model.input_shape),
                                        torch.device("cpu")), cfg.model.init_std)
    opt = make_optimiser(model, cfg)
    dev = torch.device("cpu")
    train_epoch(model, opt, x[:batch], y[:batch], cfg, 1, dev)  # warm-up
    best = math.inf
    for r in range(repeats):
        t0 = time.perf_counter()
        train_epoch(model, opt, x, y, cfg, r + 2, dev)
        best = min(best, (time.perf_counter() - t0) / math.ceil(n_samples / batch))
    aug = cfg.augment.to_dict() if hasattr(cfg.augment, "to_dict") else {}
    on = [f"{k} {v}" for k, v in aug.items() if v and k not in ("mask_width", "freq_mask_width", "mix_prob")]
    return best, f"default augmentation ({', '.join(on) or 'none'})"


# ---------------------------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a few batches (checks that everything runs)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--batches", type=int, help="batches per timing (default 8; quick 2)")
    ap.add_argument("--repeats", type=int, help="timings per engine, the best is kept (default 3; quick 1)")
    ap.add_argument("--epoch-samples", type=int, default=2000, help="training samples per epoch")
    ap.add_argument("--dropout", type=float, default=0.3)
    ap.add_argument("--engines", default="neurostack,train_epoch,snntorch,snntorch_all,norse",
                    help="comma-separated: neurostack, train_epoch, snntorch, snntorch_all, norse")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    ap.add_argument("--out", type=Path, help="write the results into this markdown file (its train_speed section)")
    args = ap.parse_args()
    n_batches = args.batches or (2 if args.quick else 8)
    repeats = args.repeats or (1 if args.quick else 3)
    engines = [e for e in args.engines.split(",") if e]
    torch.set_num_threads(args.threads)
    busy = hasattr(os, "getloadavg") and os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1)
    if busy and args.threads > 1:
        print(f"warning: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: multi-threaded torch "
              "timings are unreliable here; compare with --threads 1", file=sys.stderr)

    g = torch.Generator().manual_seed(1)
    batches = []
    for _ in range(n_batches):
        feat = torch.rand(1, args.batch, N_IN, generator=g)
        batches.append((feat.expand(STEPS, args.batch, N_IN).contiguous(),
                        torch.randint(0, N_CLASSES, (args.batch,), generator=g)))
    _, ns_model = neurostack_model(batches[0][0], args.dropout)
    epoch_batches = math.ceil(args.epoch_samples / args.batch)

    results: list[tuple[str, float, str]] = []  # (engine, seconds per batch, note)
    for e in engines:
        print(f"# {e}", file=sys.stderr)
        if e == "neurostack":
            results.append(("neurostack (build_model: forward, backward, AdamW step)",
                            time_steps(ns_model, batches, repeats), "atan surrogate; fc layers over all steps at once"))
        elif e == "train_epoch":
            n = n_batches * args.batch
            try:
                s, note = time_train_epoch(n, args.batch, repeats, args.dropout)
                results.append(("neurostack train_epoch (the real loop)", s,
                                f"includes input encoding, augmentation, metrics; {note}"))
            except Exception as exc:  # noqa: BLE001 - the loop's API is being edited; report, don't fail
                results.append(("neurostack train_epoch (the real loop)", math.nan,
                                f"skipped: {type(exc).__name__}: {str(exc).splitlines()[0][:100]}"))
        elif e == "snntorch":
            results.append(("snnTorch (per-step Linear, tutorial style)",
                            time_steps(SnnTorchMLP(ns_model, args.dropout, all_steps=False), batches, repeats),
                            "Leaky beta 0.8, threshold 5, atan surrogate, reset zero; readout Leaky reset none"))
        elif e == "snntorch_all":
            results.append(("snnTorch (fc1 over all steps at once)",
                            time_steps(SnnTorchMLP(ns_model, args.dropout, all_steps=True), batches, repeats),
                            "as above, the first Linear hoisted out of the time loop"))
        elif e == "norse":
            results.append(("Norse (naive: LIFBoxCell / LIBoxCell loop)",
                            time_steps(NorseMLP(ns_model, args.dropout), batches, repeats),
                            "SuperSpike surrogate (Norse has no atan); per-step Linear"))
        else:
            raise SystemExit(f"error: unknown engine '{e}'")

    ref = next((s for name, s, _ in results if name.startswith("neurostack (")), math.nan)
    rows = []
    for name, s, note in results:
        if math.isnan(s):
            rows.append([name, "-", "-", "-", note])
            continue
        rows.append([name, f"{1e3 * s:.1f}", f"{s * epoch_batches:.2f}",
                     "-" if name.startswith("neurostack (") or math.isnan(ref) else f"{s / ref:.2f}x", note])
    text = "\n".join([
        "Training speed on the CPU (`benchmarks/train_speed.py`): the same 1600-512-10 spiking MLP, T = 25, batch "
        f"{args.batch}, BPTT, AdamW. Epoch = {args.epoch_samples} samples = {epoch_batches} batches; best of "
        f"{repeats} timings of {n_batches} batches. \"vs neurostack\" = engine time / neurostack time "
        "(above 1: neurostack is faster).", "",
        *(["**--quick: a smoke test on a few batches, not the final figures.**", ""] if args.quick else []),
        *machine_info(args.threads),
        *(["- **warning**: the machine was busy: multi-threaded figures are unreliable"] if busy and args.threads > 1
          else []),
        "",
        table(["engine", "ms / batch", "s / epoch", "vs neurostack", "note"], rows), "",
    ])
    snn_times = [s for name, s, _ in results if name.startswith("snnTorch") and not math.isnan(s)]
    loop = next((s for name, s, _ in results if name.startswith("neurostack train_epoch")), math.nan)
    if snn_times and not math.isnan(ref):
        fastest = min(snn_times)
        text += (f"\nGoal (issue 6): epoch time no slower than snnTorch's: neurostack {ref * epoch_batches:.2f} s, "
                 f"fastest snnTorch variant {fastest * epoch_batches:.2f} s: "
                 f"{'met' if ref <= fastest else 'NOT met'} ({fastest / ref:.2f}x)")
        if not math.isnan(loop):
            text += (f"; neurostack's real loop (train_epoch) {loop * epoch_batches:.2f} s: "
                     f"{'met' if loop <= fastest else 'NOT met'} ({fastest / loop:.2f}x)")
        text += ".\n"
    print(text)
    if args.out:
        write_section(args.out, SECTION, "Training speed", text)
        print(f"written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
