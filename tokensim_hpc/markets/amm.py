"""Constant-product AMM pools (Uniswap v2 semantics) with batched clearing.

Market state is small and replicated: every rank holds the same reserves and
applies the same update to the same reduced order flow, so the pools agree
on every rank without communication. Everything here is vectorised over the
pools and local; no MPI.

Swap (one trade of a in, fee f, g = 1 - f, reserves x in and y out)::

    out = y * a g / (x + a g)

and the fee stays in the pool, so k = x y grows with every trade.

Batch clearing (one clearing per pool and tick): buyers offer Q units of
quote for base, sellers offer B units of base for quote, and every order is
filled at one clearing price p (quote per base): a buyer paying q receives
q / p, a seller giving b receives b p. Orders cross each other first; only
the imbalance goes through the pool, at the same average price p:

* net buying (Q / B > y / (g x)): the pool receives d = Q - B p quote and
  pays o = out(d) = d / p base, which gives p = (y + g Q) / (g (x + B));
* net selling (Q / B < g y / x): the pool receives b = B - Q / p base and
  pays b p quote, which gives p = g (y + Q) / (x + g B);
* otherwise the orders cross exactly at p = Q / B and the pool does not
  trade (the fee makes a band around the pool price y / x where crossing
  is cheaper than trading with the pool).

The three cases meet continuously at the band's edges. Agents' total change
is then -d quote and +o base (or +b p quote and -b base), the negative of
the pool's, so tokens are conserved up to floating-point rounding.
"""

from __future__ import annotations

import numpy as np

from .spec import MarketSpec


def amount_out(reserve_in, reserve_out, amount_in, fee):
    """Output of a swap of ``amount_in`` (Uniswap v2, fee kept by the pool). Local."""
    a = np.asarray(amount_in, dtype=np.float64) * (1.0 - np.asarray(fee, dtype=np.float64))
    return reserve_out * a / (reserve_in + a)


def amount_in(reserve_in, reserve_out, amount_out_, fee):
    """Input that buys exactly ``amount_out_`` (< ``reserve_out``): the inverse of
    :func:`amount_out`. Local."""
    g = 1.0 - np.asarray(fee, dtype=np.float64)
    return reserve_in * amount_out_ / ((reserve_out - amount_out_) * g)


def batch_clear(x, y, fee, buy_quote, sell_base):
    """Clearing of one batch per pool (see the module docstring). Local.

    Parameters
    ----------
    x, y : arrays of float64, shape (n_pools,)
        Base and quote reserves before the batch (> 0).
    fee : array of float64
        Swap fee f of each pool, in [0, 1).
    buy_quote, sell_base : arrays of float64
        Q: quote offered by all buy orders; B: base offered by all sell
        orders (both >= 0).

    Returns
    -------
    price : array
        The clearing price p (quote per base); the pool price y / x when
        there are no orders.
    pool_quote_in, pool_base_out : arrays
        The pool's trade: quote received and base paid (both negative when
        the pool buys base). The new reserves are x - pool_base_out and
        y + pool_quote_in.
    """
    x, y, fee = (np.asarray(v, dtype=np.float64) for v in (x, y, fee))
    q = np.asarray(buy_quote, dtype=np.float64)
    b = np.asarray(sell_base, dtype=np.float64)
    g = 1.0 - fee
    price = y / x
    quote_in = np.zeros_like(x)
    base_out = np.zeros_like(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_buy = (y + g * q) / (g * (x + b))
        p_sell = g * (y + q) / (x + g * b)
        buy = q * g * x > b * y              # Q / B > y / (g x)
        sell = ~buy & (b * g * y > q * x)    # Q / B < g y / x
        cross = ~buy & ~sell & (b > 0)
    # Net buying: the pool sells o = out(d) base for d quote.
    d = q[buy] - b[buy] * p_buy[buy]
    o = amount_out(y[buy], x[buy], d, fee[buy])
    price[buy], quote_in[buy], base_out[buy] = d / o, d, o
    # Net selling: the pool buys s base for out(s) quote.
    s = b[sell] - q[sell] / p_sell[sell]
    paid = amount_out(x[sell], y[sell], s, fee[sell])
    price[sell], quote_in[sell], base_out[sell] = paid / s, -paid, -s
    price[cross] = q[cross] / b[cross]
    return price, quote_in, base_out


class PoolBook:
    """The pools of a market, replicated on every rank. Local.

    Attributes (arrays over pools, in scenario order): ``base``, ``quote``
    (reserves x, y), ``fee``, ``lp_supply`` (liquidity shares, sqrt(x y) at
    the start), ``fees_base``, ``fees_quote`` (fees collected), ``chain``
    (chain index), ``base_slot``, ``quote_slot`` (holding slots of the
    market, see :meth:`MarketSpec.slots`).
    """

    def __init__(self, market: MarketSpec):
        pools = market.pools
        names = [c.name for c in market.chains]
        self.names = [f"{p.chain}:{p.base}/{p.quote}" for p in pools]
        self.base = np.array([p.reserve_base for p in pools], dtype=np.float64)
        self.quote = np.array([p.reserve_quote for p in pools], dtype=np.float64)
        self.fee = np.array([p.fee for p in pools], dtype=np.float64)
        self.lp_supply = np.sqrt(self.base * self.quote)
        self.fees_base = np.zeros(len(pools))
        self.fees_quote = np.zeros(len(pools))
        self.chain = np.array([names.index(p.chain) for p in pools], dtype=np.int64)
        self.base_slot = np.array([market.slot_index(p.chain, p.base) for p in pools],
                                  dtype=np.int64)
        self.quote_slot = np.array([market.slot_index(p.chain, p.quote) for p in pools],
                                   dtype=np.int64)

    @property
    def n_pools(self) -> int:
        return self.base.shape[0]

    def prices(self) -> np.ndarray:
        """Pool prices y / x (quote per base)."""
        return self.quote / self.base

    def invariant(self) -> np.ndarray:
        """k = x y of every pool."""
        return self.base * self.quote

    def clear(self, buy_quote, sell_base) -> np.ndarray:
        """Clear one batch per pool, update the reserves and fees; return the
        clearing prices (see :func:`batch_clear`)."""
        price, quote_in, base_out = batch_clear(self.base, self.quote, self.fee, buy_quote,
                                                sell_base)
        self.fees_quote += np.where(quote_in > 0, quote_in * self.fee, 0.0)
        self.fees_base += np.where(base_out < 0, -base_out * self.fee, 0.0)
        self.base -= base_out
        self.quote += quote_in
        return price

    def add_liquidity(self, base, quote):
        """Deposit up to (base, quote) per pool at the pool's ratio.

        Returns (base used, quote used, shares minted), arrays over pools:
        the deposit is the largest one at the ratio x : y that both amounts
        cover, and mints shares in proportion to the reserves. The unused
        rest stays with the depositor.
        """
        base = np.asarray(base, dtype=np.float64)
        quote = np.asarray(quote, dtype=np.float64)
        frac = np.minimum(base / self.base, quote / self.quote)
        used_base, used_quote = frac * self.base, frac * self.quote
        shares = frac * self.lp_supply
        self.base += used_base
        self.quote += used_quote
        self.lp_supply += shares
        return used_base, used_quote, shares

    def remove_liquidity(self, shares):
        """Burn ``shares`` per pool (<= the supply); return the (base, quote) paid out."""
        shares = np.asarray(shares, dtype=np.float64)
        if np.any(shares > self.lp_supply) or np.any(shares < 0):
            raise ValueError("remove_liquidity: shares must be in [0, lp_supply]")
        frac = shares / self.lp_supply
        out_base, out_quote = frac * self.base, frac * self.quote
        self.base -= out_base
        self.quote -= out_quote
        self.lp_supply -= shares
        return out_base, out_quote
