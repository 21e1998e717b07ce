"""Multi-process training with PyTorch DistributedDataParallel (DDP), as started by `torchrun`.

`torchrun --nproc-per-node N -m neurostack train ...` starts N processes and sets WORLD_SIZE, RANK and
LOCAL_RANK (and MASTER_ADDR, MASTER_PORT) in each one's environment. A plain `neurostack train` has none of
them: it is one process of rank 0, and every function here is then a no-op that returns its input.

Division of labour: every process trains on its own shard of each epoch's permutation of the training set,
DDP averages the gradients of each step over the processes (so the global batch is N x --batch-size), and
rank 0 (the "main" process) alone evaluates, prints and writes files.
"""

from __future__ import annotations

import os
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

from neurostack.errors import NeurostackError

# Rank 0 may evaluate (validation, the test split) while the others wait for it: allow that much time.
TIMEOUT = timedelta(hours=2)

_comm_device = torch.device("cpu")  # where collectives' tensors live: the GPU with nccl


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value.strip() else default
    except ValueError:
        raise NeurostackError(f"${name} = {value!r}: expected an integer (as torchrun sets it)") from None


def world_size() -> int:
    """Number of training processes ($WORLD_SIZE; 1 without torchrun)."""
    return dist.get_world_size() if dist.is_initialized() else _env_int("WORLD_SIZE", 1)


def rank() -> int:
    """This process's rank in [0, world_size) ($RANK; 0 without torchrun)."""
    return dist.get_rank() if dist.is_initialized() else _env_int("RANK", 0)


def is_distributed() -> bool:
    """True when started by torchrun with more than one process."""
    return world_size() > 1


def is_main() -> bool:
    """True in the process that prints and writes files (rank 0; the only one without torchrun)."""
    return rank() == 0


def init_from_env(device: torch.device) -> torch.device:
    """Join the process group that torchrun set up: gloo on the CPU, nccl on CUDA. Returns this process's device
    (cuda:$LOCAL_RANK for CUDA runs), the one chosen at joining when already joined; without torchrun, `device`."""
    global _comm_device
    if dist.is_initialized():  # by an earlier call, or by a script before calling `run_training`
        if dist.get_backend() == "nccl" and _comm_device.type != "cuda":
            _comm_device = torch.device("cuda", torch.cuda.current_device())
        return _comm_device
    if not is_distributed():
        return device
    if device.type == "cuda":
        per_node, gpus = _env_int("LOCAL_WORLD_SIZE", 1), torch.cuda.device_count()
        if per_node > gpus:  # checked alike in every process, so rank 0 reports it
            raise NeurostackError(f"{per_node} processes per node, but this machine has {gpus} GPU(s): "
                                  f"start at most {gpus} (--nproc-per-node), one per GPU")
        device = torch.device("cuda", _env_int("LOCAL_RANK", 0))
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    try:
        dist.init_process_group(backend, timeout=TIMEOUT)
    except (RuntimeError, ValueError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise NeurostackError(f"cannot join the {backend} process group of {world_size()} processes ({reason})") from None
    _comm_device = device
    return device


def shutdown() -> None:
    """Leave the process group (if joined)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def shard_indices(order: np.ndarray, rank: int, world: int) -> np.ndarray:
    """This rank's share of `order` (N sample indices, e.g. an epoch's permutation): the entries at positions
    rank, rank + world, rank + 2 world, ... Every rank gets ceil(N / world) of them, so every rank runs the same
    number of steps; to get there, `order` is first padded by repeating its first (-N mod world) entries (as
    torch's DistributedSampler does). With world = 1 this is `order` itself."""
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"rank {rank} of {world} processes")
    order = np.asarray(order)
    pad = -len(order) % world
    if pad and len(order):
        order = np.concatenate([order, np.resize(order, pad)])
    return order[rank::world]


def rank_seed(seed: int) -> int:
    """A seed for this process's own random streams (dropout, encoder noise, augmentation): `seed` on rank 0
    (so a one-process run is unchanged), a different one on each other rank."""
    return (seed + 1_000_033 * rank()) % 2**31


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The module to train: `model` in DistributedDataParallel when distributed (it averages each step's gradients
    over the processes), else `model` itself. Evaluate and save `model`, never the wrapper."""
    if not dist.is_initialized():
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def all_reduce_sum(values: list[float]) -> list[float]:
    """Element-wise sums of `values` over all processes (a collective: every process must call it)."""
    if not dist.is_initialized():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=_comm_device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def broadcast_float(value: float) -> float:
    """Rank 0's `value`, on every process (a collective)."""
    if not dist.is_initialized():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=_comm_device)
    dist.broadcast(t, src=0)
    return float(t.item())


def first_error(message: str | None) -> str | None:
    """Every process passes its error message (None: it is fine); all get back the message of the lowest rank
    that failed, marked with that rank unless it is 0, or None when none did (a collective). Lets rank 0 report
    an error that only another process hit (say, data missing on another node) instead of all hanging."""
    if not dist.is_initialized():
        return message
    messages: list[str | None] = [None] * dist.get_world_size()
    dist.all_gather_object(messages, message)
    for r, m in enumerate(messages):
        if m is not None:
            return m if r == 0 else f"[process {r}] {m}"
    return None


def lost_contact(exc: BaseException) -> bool:
    """True for what a collective raises when another process died or left (gloo, nccl, the rendezvous store):
    that process's own output says why."""
    if isinstance(exc, dist.DistError):
        return True
    text = str(exc)
    return (isinstance(exc, RuntimeError) and dist.is_initialized()
            and any(s in text for s in ("gloo", "NCCL", "Connection reset", "Connection closed")))

