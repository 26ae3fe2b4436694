"""Build script for TokenSim-HPC.

Every ``cython_kernels/*.pyx`` is compiled into ``tokensim_hpc._kernels.<name>``
(one list, below). The kernels hold the hot loops only: typed memoryviews,
``nogil``, no MPI and no I/O.

Environment variables read at build time
----------------------------------------
TOKENSIM_DEBUG=1
    Build with ``-O0 -g``, bounds and wraparound checks on, and Cython's
    line tracing, and the exact block sums' contract (top >= every value)
    checked, for debugging a kernel (slow).
TOKENSIM_KERNELS=name1,name2
    Build only these kernels (default: all). Useful while editing one kernel.
TOKENSIM_MARCH=native
    Add ``-march=<value>`` (off by default so that a build on a login node
    also runs on compute nodes of another CPU generation).
TOKENSIM_NO_CLONES=1
    Compile the few block loops that are otherwise built twice, for AVX2 and
    for the baseline x86-64 (function multi-versioning with GCC on glibc Linux; the
    loader picks what the CPU runs; the exact block sums and the tanh), for
    the baseline only. The results are the same bits either way (a test
    builds both and compares).
CC
    The C compiler. On a cluster, ``CC=mpicc`` builds against the site's MPI
    toolchain; the kernels themselves do not call MPI.
"""

import glob
import os

import numpy
from Cython.Build import cythonize
from setuptools import Extension, find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))
KERNEL_DIR = "cython_kernels"

# The one list of kernels: every .pyx in cython_kernels/.
KERNELS = sorted(
    os.path.splitext(os.path.basename(p))[0]
    for p in glob.glob(os.path.join(HERE, KERNEL_DIR, "*.pyx"))
)

DEBUG = os.environ.get("TOKENSIM_DEBUG", "0") not in ("", "0")
ONLY = [k for k in os.environ.get("TOKENSIM_KERNELS", "").split(",") if k]
MARCH = os.environ.get("TOKENSIM_MARCH", "")
NO_CLONES = os.environ.get("TOKENSIM_NO_CLONES", "0") not in ("", "0")

if DEBUG:
    cflags = ["-O0", "-g"]
    directives = {"boundscheck": True, "wraparound": True, "linetrace": True}
    macros = [("CYTHON_TRACE_NOGIL", "1"), ("TOKENSIM_CHECK_TOP", "1")]
else:
    # -fno-trapping-math: no kernel relies on floating-point traps or status flags, and
    # without it GCC keeps a conditional division, comparison or conversion out of vector
    # code (branches stay branches); values are unchanged: IEEE rounding, no
    # reassociation.
    cflags = ["-O3", "-fno-math-errno", "-fno-trapping-math"]
    directives = {
        "boundscheck": False,
        "wraparound": False,
        "cdivision": True,
        "initializedcheck": False,
    }
    macros = []
if MARCH:
    cflags.append(f"-march={MARCH}")
if NO_CLONES:
    macros.append(("TOKENSIM_NO_CLONES", "1"))
# Floating-point results must not depend on the build: no -ffast-math, and
# no contraction of a*b+c into FMA, so that the Cython kernels and their numpy
# twins round the same way.
cflags.append("-ffp-contract=off")
# The exact sums' magic-number split relies on (y + M) - M not being simplified: no
# fast math. (Not "-fno-fast-math" here: GCC reads it as -fmath-errno -ftrapping-math
# too. A compiler with fast math on by default, such as Intel's icx, needs
# CFLAGS=-fp-model=precise; the exact-sum tests fail otherwise.)
directives["language_level"] = 3

extensions = [
    Extension(
        f"tokensim_hpc._kernels.{name}",
        [os.path.join(KERNEL_DIR, f"{name}.pyx")],
        include_dirs=[numpy.get_include(), KERNEL_DIR],
        extra_compile_args=cflags,
        depends=sorted(glob.glob(os.path.join(KERNEL_DIR, "*.h"))),
        define_macros=macros + [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    for name in KERNELS
    if not ONLY or name in ONLY
]

setup(
    name="tokensim-hpc",
    packages=find_packages(include=["tokensim_hpc", "tokensim_hpc.*"]),
    package_data={"tokensim_hpc": ["scenarios/*.toml"]},
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        include_path=[KERNEL_DIR],
        quiet=True,
    ),
    zip_safe=False,
)
