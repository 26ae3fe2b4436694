/* Function multi-versioning of the kernels' block loops (_exactsum.pxd, _fastmath.pxd).

   TOKENSIM_CLONES: on x86-64 glibc Linux with GCC, a function marked with it is
   compiled twice, for AVX2 and for the baseline x86-64, and the loader's ifunc picks
   the one the CPU runs. The clones do the same IEEE operations on every value (the
   build has -ffp-contract=off, and AVX2 does not imply FMA), so the results are the
   same bits either way. Elsewhere (musl has no ifunc; clang, icx and nvc are left
   out), or with -DTOKENSIM_NO_CLONES (setup.py's TOKENSIM_NO_CLONES=1), it is empty:
   the baseline only.

   TOKENSIM_MAYBE_UNUSED: a static function that not every kernel cimporting its .pxd
   calls. */
#ifndef TOKENSIM_CLONES_H
#define TOKENSIM_CLONES_H

#if defined(__GNUC__)
#define TOKENSIM_MAYBE_UNUSED __attribute__((unused))
#else
#define TOKENSIM_MAYBE_UNUSED
#endif

#if defined(__x86_64__) && defined(__linux__) && defined(__GLIBC__) && defined(__GNUC__) \
    && !defined(__clang__) && !defined(__INTEL_COMPILER) && !defined(__NVCOMPILER) \
    && !defined(TOKENSIM_NO_CLONES)
#define TOKENSIM_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define TOKENSIM_CLONES
#endif

#endif
