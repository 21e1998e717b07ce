"""Run a reader of untrusted files in a forked child, so a file that makes a C library hang or crash cannot.

A damaged HDF5 file can send libhdf5 into an endless loop (a corrupt global-heap entry behind a
variable-length string does) or crash it, and neither can be interrupted from Python. `isolated(fn, ...)`
forks, runs `fn` in the child and sends its result (or its NeurostackError) back through a pipe; the
parent waits at most `timeout` seconds, then kills the child and raises NeurostackError. A child that
dies from a signal is reported the same way. The child only reads: the parent unpickles what our own
code produced there, never the file's content as code.

Only on Linux (fork without exec is unsafe on macOS and absent on Windows), and not when
`$NEUROSTACK_NO_FORK` is set: then `fn` runs in-process, unprotected.
"""

from __future__ import annotations

import faulthandler
import os
import pickle
import select
import signal
import sys
import time
import warnings
from typing import Any, Callable

from neurostack.errors import NeurostackError

ENV_NO_FORK = "NEUROSTACK_NO_FORK"


def _child(fn: Callable[..., Any], args: tuple, write_fd: int) -> None:
    try:
        faulthandler.disable()  # a crash here is the parent's to report, in one line
        try:
            outcome = ("ok", fn(*args))
        except NeurostackError as exc:
            outcome = ("error", str(exc))
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent, which decides
            outcome = ("exception", f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
        data = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(data)
        while view:
            view = view[os.write(write_fd, view):]
    finally:
        os._exit(0)  # no atexit handlers, no flushing the parent's buffers


def isolated(fn: Callable[..., Any], *args, timeout: float, what: str) -> Any:
    """`fn(*args)`, computed in a forked child; `what` (e.g. the file) starts the error messages.

    A NeurostackError in the child is raised again here; any other exception becomes a NeurostackError
    "{what}: cannot read it (...)"; a hang past `timeout` seconds or a crash of the child too.
    """
    if not sys.platform.startswith("linux") or os.environ.get(ENV_NO_FORK):
        return fn(*args)
    read_fd, write_fd = os.pipe()
    with warnings.catch_warnings():  # Python 3.12+ warns about forking with threads: the child only reads a file
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _child(fn, args, write_fd)
    os.close(write_fd)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    done = False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NeurostackError(f"{what}: reading it did not finish within {timeout:.0f} s (a damaged HDF5 "
                                      f"file can make the HDF5 library loop forever)")
            ready, _, _ = select.select([read_fd], [], [], left)
            if ready:
                chunk = os.read(read_fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        done = True
    finally:
        os.close(read_fd)
        if not done:  # timed out, or interrupted (Ctrl-C): the child must not outlive us
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    if not chunks:
        how = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit status {os.WEXITSTATUS(status)}"
        raise NeurostackError(f"{what}: the reader crashed on it ({how}): a damaged file")
    kind, value = pickle.loads(b"".join(chunks))  # produced by _child above, not by the file
    if kind == "ok":
        return value
    if kind == "error":
        raise NeurostackError(value)
    raise NeurostackError(f"{what}: cannot read it ({value})")
