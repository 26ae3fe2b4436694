"""The benchmark model B1 (shared/benchmark-B1.md) on a partitioned domain.

State is struct-of-arrays over the owned agents (sentiment also over ghost
slots). A tick is: halo exchange of sentiment, overlapped with the kernel on
interior agents; the kernel on boundary agents; one exact reduction of the
orders and sentiment; the pool update, identical on every rank; the fills;
one exact reduction of wealth. Only the kernels touch individual agents.
"""

from __future__ import annotations

import math

import numpy as np

from ..parallel.reduce import allreduce_exact, new_accumulators


def initial_positions(seed: int, lo: int, hi: int) -> np.ndarray:
    """Rows lo..hi-1 of ``numpy.random.default_rng(seed).random((N, 2))``. Local.

    PCG64 yields one 64-bit output per double; advancing the generator by
    2*lo outputs lands exactly on row lo, so every rank draws only its block.
    """
    bitgen = np.random.PCG64(seed)
    bitgen.advance(2 * lo)
    return np.random.Generator(bitgen).random((hi - lo, 2))


class B1:
    """B1 state and step on one rank's domain.

    Parameters
    ----------
    domain : :class:`tokensim_hpc.engine.Domain`
    params : :class:`tokensim_hpc.scenario.B1Model`
    kernels : namespace of kernel modules (``kernels.b1``, ``kernels.rng``):
        the Cython modules or their numpy twins.
    seed : int
    overlap : bool
        Run the kernel on interior agents while the halo exchange is in flight.
    """

    def __init__(self, domain, params, kernels, seed, overlap=True):
        self.d = domain
        self.p = params
        self.k = kernels.b1
        self.rng = kernels.rng
        self.seed = int(seed)
        self.overlap = overlap
        n, slots = domain.n_owned, domain.n_owned + domain.halo.n_ghost
        # State written here (np.full), not faulted in page by page in the first ticks.
        self.s = np.full(slots, 0.0)
        if params.s0_offset != "none":
            self.s[:n] = domain.x - params.s0_offset
        self.s_new = np.full(slots, 0.0)
        self.cash = np.full(n, params.cash0)
        self.tokens = np.full(n, params.tokens0)
        self.orders = np.full(n, 0.0)
        reserve = params.reserve_per_agent * domain.n_total
        self.reserve_cash = reserve
        self.reserve_tokens = reserve
        self.price = self.reserve_cash / self.reserve_tokens
        self.price_prev = self.price
        # Philox blocks of the shocks, one per agent, each serving four ticks.
        self.shock_words = np.full((4, n), 0, dtype=np.uint64)  # lane-major
        self._shock_window = -1
        self._acc = new_accumulators(2)
        self._acc_w = new_accumulators(1)

    def momentum(self) -> float:
        """m = clip(scale * ln(P / P_prev), -1, 1). Local (market state is replicated)."""
        m = self.p.momentum_scale * math.log(self.price / self.price_prev)
        return min(1.0, max(-1.0, m))

    def _sentiment(self, rows, momentum, tick):
        p, d = self.p, self.d
        self.k.sentiment_orders(rows, d.indptr, d.indices, d.weights, d.uniform_weight,
                                self.s, self.s_new, d.gid, self.shock_words, self.cash,
                                self.tokens, self.orders, self.price,
                                momentum, p.w_self, p.w_neighbours, p.w_momentum, p.sigma,
                                p.order_fraction, self.seed, tick, self._acc[0], self._acc[1])

    def clear_pool(self, net_flow: float) -> None:
        """Pass the net order flow Q through the constant-product pool (spec step 6). Local."""
        g = 1.0 - self.p.fee
        if net_flow > 0:
            dt = self.reserve_tokens * net_flow * g / (self.reserve_cash + net_flow * g)
            self.reserve_cash += net_flow
            self.reserve_tokens -= dt
        elif net_flow < 0:
            a = -net_flow / self.price
            dc = self.reserve_cash * a * g / (self.reserve_tokens + a * g)
            self.reserve_tokens += a
            self.reserve_cash -= dc
        self.price_prev = self.price
        self.price = self.reserve_cash / self.reserve_tokens

    def step(self, tick: int, timers) -> dict:
        """Advance one tick; return the tick's record (same on every rank). Collective."""
        d = self.d
        m = self.momentum()
        if self.p.sigma != 0.0 and tick >> 2 != self._shock_window:
            with timers("kernel"):
                self._shock_window = tick >> 2
                self.rng.random_raw_lanes(self.seed, d.gid, tick >> 2, self.k.STREAM_SHOCK, 0,
                                          self.shock_words)
        self._acc[:] = 0
        self._acc_w[:] = 0
        with timers("halo+kernel"):
            if self.overlap:
                pending = d.halo.start(self.s)
                self._sentiment(d.interior_rows, m, tick)
                d.halo.finish(pending)
                self._sentiment(d.boundary_rows, m, tick)
            else:
                d.halo.exchange(self.s)
                self._sentiment(d.all_rows, m, tick)
        with timers("reduce"):
            net_flow, sum_s = allreduce_exact(d.comm, self._acc)
        self.clear_pool(net_flow)
        with timers("kernel"):
            self.k.execute_orders(self.cash, self.tokens, self.orders, self.price, self._acc_w[0])
        with timers("reduce"):
            (wealth,) = allreduce_exact(d.comm, self._acc_w)
        self.s, self.s_new = self.s_new, self.s
        return {"price": self.price, "net_flow": net_flow,
                "mean_sentiment": sum_s / d.n_total, "total_wealth": wealth}

    def axes(self) -> dict:
        """Labels of second dataset axes (B1 has none)."""
        return {}

    def static_columns(self) -> dict:
        """Per-agent columns written once (B1 has none beyond ids and positions)."""
        return {}

    def summary(self, records: dict) -> list[str]:
        """Lines of the run summary (rank 0)."""
        if not records:
            return []
        price = records["price"]
        return [f"  price         {price[0]:.6f} -> {price[-1]:.6f} "
                f"(min {price.min():.6f}, max {price.max():.6f})",
                f"  sentiment     mean {records['mean_sentiment'][-1]:+.4f} at the last tick",
                f"  total wealth  {records['total_wealth'][-1]:.6e} cash"]

    def snapshot(self) -> dict:
        """Owned agents' columns for an output snapshot. Local."""
        n = self.d.n_owned
        return {"sentiment": self.s[:n], "cash": self.cash, "tokens": self.tokens}
