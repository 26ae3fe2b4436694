"""The block loops built for AVX2 and for the baseline (function multi-versioning, see
setup.py's TOKENSIM_NO_CLONES) give the same bits: a baseline-only build of the
kernels that hold them, compared with the installed build on the same inputs."""

import importlib.util
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tokensim_hpc._kernels import b1 as b1_installed
from tokensim_hpc._kernels import exactsum as es_installed
from tokensim_hpc.numpy_kernels.exactsum import NACC

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ("exactsum", "b1")

pytestmark = pytest.mark.skipif(
    platform.machine() != "x86_64" or sys.platform != "linux"
    or platform.libc_ver()[0] != "glibc",
    reason="the loops are multi-versioned on x86-64 glibc Linux only")


def _has_clone(path) -> bool:
    """Whether a kernel module holds the AVX2 clones (GCC names them ``<function>.avx2``;
    a stripped module, or one built by another compiler or with TOKENSIM_NO_CLONES, has
    none)."""
    return b".avx2" in Path(path).read_bytes()


def _cpu_has_avx2() -> bool:
    try:
        return " avx2" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


# The comparison means something only where the installed build runs the AVX2 clones.
INSTALLED_CLONED = _has_clone(es_installed.__file__) and _has_clone(b1_installed.__file__)
compares_clones = pytest.mark.skipif(
    not (INSTALLED_CLONED and _cpu_has_avx2()),
    reason="the installed kernels have no AVX2 clones, or this CPU has no AVX2")


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """The kernels built with -DTOKENSIM_NO_CLONES into a folder of their own."""
    out = tmp_path_factory.mktemp("baseline")
    env = dict(os.environ, TOKENSIM_NO_CLONES="1", TOKENSIM_KERNELS=",".join(KERNELS))
    done = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--build-lib",
                           str(out / "lib"), "--build-temp", str(out / "tmp")],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"the baseline build failed:\n{done.stdout}\n{done.stderr}"
    mods = {}
    for name in KERNELS:
        (path,) = (out / "lib" / "tokensim_hpc" / "_kernels").glob(f"{name}.*.so")
        # (Its own name, which the module's init function carries; not put in sys.modules.)
        spec = importlib.util.spec_from_file_location(f"tokensim_hpc._kernels.{name}", path)
        mods[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mods[name])
        mods[name + "_path"] = path
    return mods


def test_the_baseline_build_has_no_clones(baseline):
    assert not _has_clone(baseline["exactsum_path"]) and not _has_clone(baseline["b1_path"])


@pytest.mark.skipif("gcc" not in (os.environ.get("CC") or "gcc")
                    or os.environ.get("TOKENSIM_NO_CLONES", "0") not in ("", "0"),
                    reason="the clones are GCC's, unless TOKENSIM_NO_CLONES asks for none")
def test_the_installed_build_has_the_avx2_clones():
    """With GCC (the default compiler here), the installed kernels hold the AVX2
    clones (else the comparisons below would compare the baseline with itself)."""
    assert INSTALLED_CLONED


def _values(rs):
    n = 50_000
    parts = [rs.standard_normal(n) * 10.0 ** rs.integers(-30, 30, n),
             rs.uniform(-1, 1, n), np.ldexp(rs.uniform(-1, 1, 3000), -rs.integers(960, 1075, 3000)),
             np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e308, -1e308, 5e-324])]
    return np.concatenate(parts)[rs.permutation(n * 2 + 3008)]


@compares_clones
def test_exact_block_sums_agree(baseline):
    x = _values(np.random.default_rng(3))
    out = []
    for mod in (es_installed, baseline["exactsum"]):
        acc = np.zeros(NACC, dtype=np.int64)
        mod.accumulate(x, acc)
        out.append(acc)
    np.testing.assert_array_equal(out[0], out[1])


@compares_clones
def test_b1_kernels_agree(baseline):
    """tanh and the exact sums inside B1's kernels: every output bit for bit."""
    rs = np.random.default_rng(4)
    n, k = 20_000, 8
    indptr = np.arange(0, n * k + 1, k, dtype=np.int64)
    indices = rs.integers(0, n, n * k).astype(np.int32)
    s = np.concatenate((rs.normal(0, 1.5, n - 4), [np.nan, 0.625, -0.0, np.inf]))
    gid = rs.permutation(n).astype(np.int64)
    words = rs.integers(0, 2**63, (4, n)).astype(np.uint64)
    cash0, tokens0 = rs.uniform(0, 2000, n), rs.uniform(0, 20, n)
    out = []
    for mod in (b1_installed, baseline["b1"]):
        s_new, orders = np.zeros(n), np.zeros(n)
        cash, tokens = cash0.copy(), tokens0.copy()
        acc = np.zeros((3, NACC), dtype=np.int64)
        mod.sentiment_orders(np.arange(n, dtype=np.int64), indptr, indices, np.empty(0), 0.125,
                             s, s_new, gid, words, cash, tokens, orders, 1.3, 0.2, 0.5, 1.0,
                             0.5, 0.3, 0.01, 42, 7, acc[0], acc[1])
        mod.execute_orders(cash, tokens, orders, 1.31, acc[2])
        out.append([s_new.view(np.uint64), orders.view(np.uint64), cash, tokens, acc])
    for a, b in zip(*out, strict=True):
        np.testing.assert_array_equal(a, b)
