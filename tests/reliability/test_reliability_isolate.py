"""neurostack.isolate: a reader that hangs or crashes in C code becomes a one-line error, not a hung process."""

from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np
import pytest

from neurostack.errors import NeurostackError
from neurostack.isolate import ENV_NO_FORK, isolated

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="isolation forks on Linux only")


def _raise_user_error():
    raise NeurostackError("f.h5: missing key 'x'")


def _raise_bug():
    raise KeyError("deep inside h5py")


def _crash():
    os.kill(os.getpid(), signal.SIGSEGV)


def test_results_and_errors_come_back():
    value = isolated(lambda n: {"a": np.arange(n), "b": "text"}, 5, timeout=30, what="f")
    np.testing.assert_array_equal(value["a"], np.arange(5))
    assert value["b"] == "text"
    with pytest.raises(NeurostackError, match=r"^f\.h5: missing key 'x'$"):
        isolated(_raise_user_error, timeout=30, what="f.h5")
    with pytest.raises(NeurostackError, match=r"^f\.h5: cannot read it \(KeyError: 'deep inside h5py'\)$"):
        isolated(_raise_bug, timeout=30, what="f.h5")


def test_a_hang_is_stopped_and_a_crash_reported():
    start = time.monotonic()
    with pytest.raises(NeurostackError, match=r"^f\.h5: reading it did not finish within 1 s"):
        isolated(time.sleep, 60, timeout=1, what="f.h5")
    assert time.monotonic() - start < 10
    with pytest.raises(NeurostackError, match=r"^f\.h5: the reader crashed on it \(signal 11\)"):
        isolated(_crash, timeout=30, what="f.h5")


def test_large_results_pass_through_the_pipe():
    big = isolated(lambda: np.ones(5_000_000), timeout=60, what="f")
    assert big.shape == (5_000_000,) and big.sum() == 5_000_000


def test_can_be_switched_off(monkeypatch):
    monkeypatch.setenv(ENV_NO_FORK, "1")
    assert isolated(os.getpid, timeout=1, what="f") == os.getpid()
    monkeypatch.delenv(ENV_NO_FORK)
    assert isolated(os.getpid, timeout=30, what="f") != os.getpid()
