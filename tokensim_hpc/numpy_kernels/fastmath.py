"""Numpy twin of ``cython_kernels/_fastmath.pxd``."""

import numpy as np

# Cephes tanh on [0, 0.625] and Cephes exp's Pade approximant, as in the kernels.
_TP = (-9.64399179425052238628E-1, -9.92877231001918586564E1, -1.61468768441708447952E3)
_TQ = (1.12811678491632931402E2, 2.23548839060100448583E3, 4.84406305325125486048E3)
_EP = (1.26177193074810590878E-4, 3.02994407707441961300E-2, 9.99999999999999999910E-1)
_EQ = (3.00198505138664455042E-6, 2.52448340349684104192E-3, 2.27265548208155028766E-1,
       2.00000000000000000009E0)
_LOG2E = 1.4426950408889634073599
_LN2_HI, _LN2_LO = 6.93145751953125E-1, 1.42860682030941723212E-6
_ROUND = 6755399441055744.0  # 1.5 * 2**52


def tanh_exp(x):
    """tanh by the kernels' rational formula, operation for operation (bit for bit)."""
    x = np.asarray(x, dtype=np.float64)
    a = np.abs(x)
    with np.errstate(invalid="ignore", over="ignore"):
        z = a * a
        tp = (_TP[0] * z + _TP[1]) * z + _TP[2]
        tq = ((z + _TQ[0]) * z + _TQ[1]) * z + _TQ[2]
        y = 2.0 * a
        y = np.where(y > 40.0, 40.0, y)  # NaN stays NaN
        kf = (y * _LOG2E + _ROUND) - _ROUND
        r = y - kf * _LN2_HI
        r = r - kf * _LN2_LO
        rr = r * r
        p = r * ((_EP[0] * rr + _EP[1]) * rr + _EP[2])
        q = ((_EQ[0] * rr + _EQ[1]) * rr + _EQ[2]) * rr + _EQ[3]
        # 2^k, exact (k is an integer in [0, 58]). Where the input is NaN, r is NaN and
        # carries the input's payload into the result, as in the kernel; s is then 1.
        s = np.ldexp(1.0, np.where(np.isnan(kf), 0.0, kf).astype(np.int64))
        small = a < 0.625
        num = np.where(small, a * (tq + z * tp), s * (q + p) - (q - p))
        den = np.where(small, tq, s * (q + p) + (q - p))
        return np.copysign(num / den, x)
