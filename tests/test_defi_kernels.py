"""Economy trader kernels against their numpy twins, and the spec of an order by hand."""

import math

import numpy as np
import pytest

from tokensim_hpc._kernels import defi as cy
from tokensim_hpc._kernels import rng as cy_rng
from tokensim_hpc.numpy_kernels import defi as tw
from tokensim_hpc.numpy_kernels.exactsum import NACC, normalize, to_doubles


def _state(n, n_ghost, n_pools, n_slots, seed, k=6):
    rs = np.random.default_rng(seed)
    degree = rs.integers(0, k + 1, n)
    st = {
        "indptr": np.concatenate(([0], np.cumsum(degree))).astype(np.int64),
        "s": rs.uniform(-1, 1, n + n_ghost),
        "gid": rs.permutation(10 * n + 1)[:n].astype(np.int64),
        "kind": rs.integers(0, 7, n).astype(np.int8),
        "pool": rs.integers(0, n_pools, n).astype(np.int32),
        "fraction": rs.uniform(0.0, 0.2, n),
        "gain": rs.uniform(1, 30, n),
        "holdings": rs.uniform(0, 100, (n_slots, n)) * (rs.random((n_slots, n)) < 0.8),
        "base_slot": rs.permutation(n_slots)[:n_pools].astype(np.int64),
        "quote_slot": np.roll(rs.permutation(n_slots)[:n_pools], 1).astype(np.int64),
        "momentum": rs.uniform(-1, 1, n_pools),
        "mispricing": rs.normal(0, 0.05, n_pools),
        "gas": rs.uniform(0, 2, n_pools),
        "min_value": rs.uniform(0, 3, n_pools),
        "price": rs.uniform(0.5, 3, n_pools),
        "clearing": rs.uniform(0.5, 3, n_pools),
        "fee": rs.uniform(0, 0.01, n_pools),
        "reserve_base": rs.uniform(1e3, 1e5, n_pools),
        "pair_pools": np.array([[0, n_pools - 1], [n_pools // 2, 0]], dtype=np.int64),
        "pair_cost": np.array([0.001, 0.0]),
            }
    st["pair"] = np.where(st["kind"] == 3, rs.integers(0, 2, n), -1).astype(np.int32)
    st["arb_weight"] = rs.uniform(0, 5.0, n)
    st["indices"] = rs.integers(0, max(n + n_ghost, 1), st["indptr"][-1]).astype(np.int32)
    st["base_slot"][st["base_slot"] == st["quote_slot"]] = -1
    st["base_slot"] = np.where(st["base_slot"] < 0, (st["quote_slot"] + 1) % n_slots,
                               st["base_slot"])
    return st


def _words(gid, tick=9, seed=42):
    """The cached Philox blocks of the shocks at ``tick`` (lane-major, as the model keeps)."""
    words = np.empty((4, gid.shape[0]), dtype=np.uint64)
    cy_rng.random_raw_lanes(seed, gid, tick >> 2, cy.STREAM_TRADER, 0, words)
    return words


def _orders(mod, st, rows, s_new, hold, out):
    buy, sell, buy_pool, sell_pool, acc_flow, n_orders, acc_s = out
    mod.trader_orders(rows, st["indptr"], st["indices"], 0.125, st["s"], s_new, st["gid"],
                      _words(st["gid"]), st["kind"], st["pool"], st["fraction"], st["gain"],
                      st["pair"],
                      st["arb_weight"], hold, st["base_slot"], st["quote_slot"], st["momentum"],
                      st["mispricing"], st["gas"], st["min_value"], st["price"], st["fee"],
                      st["reserve_base"], st["pair_pools"], st["pair_cost"], 0.5, 1.0, 0.5,
                      0.3, 0.6, 42, 9, buy, sell, buy_pool, sell_pool, acc_flow, n_orders,
                      acc_s)


def _outputs(n, n_pools):
    return (np.zeros(n), np.zeros(n), np.zeros(n, np.int32), np.zeros(n, np.int32),
            np.zeros((2 * n_pools, NACC), dtype=np.int64), np.zeros(n_pools, dtype=np.int64),
            np.zeros((7, NACC), dtype=np.int64))


def _tick(mod, st, n, n_pools, n_slots, rows=None):
    rows = np.arange(n, dtype=np.int64) if rows is None else rows
    s_new = np.zeros_like(st["s"])
    hold = st["holdings"].copy()
    out = _outputs(n, n_pools)
    _orders(mod, st, rows, s_new, hold, out)
    buy, sell, buy_pool, sell_pool, acc_flow, n_orders, acc_s = out
    acc_h = np.zeros((7 * n_slots, NACC), dtype=np.int64)
    mod.fill_orders(st["kind"], buy_pool, sell_pool, buy, sell, st["base_slot"],
                    st["quote_slot"], st["clearing"], st["gas"], hold, acc_h)
    sums = [to_doubles(normalize(a.copy())) for a in (acc_flow, acc_s, acc_h)]
    return s_new, hold, buy, sell, n_orders, sums, buy_pool, sell_pool


@pytest.mark.parametrize("n", [0, 1, 2, 3000])
def test_twin_equal(n):
    st = _state(n, 50, 4, 7, n)
    a = _tick(cy, st, n, 4, 7)
    b = _tick(tw, st, n, 4, 7)
    for x, y in zip(a[:5] + a[6:], b[:5] + b[6:], strict=True):
        assert np.array_equal(x, y)
    for x, y in zip(a[5], b[5], strict=True):
        assert np.array_equal(x, y)
    if n == 3000:
        assert (a[2] > 0).sum() > 100 and (a[3] > 0).sum() > 100  # both sides trade
        both = (a[2] > 0) & (a[3] > 0)
        assert both.sum() > 20 and np.all(st["kind"][both] == 3)  # arbitrage: two legs
        assert np.all(a[6][both] != a[7][both])
        lp = st["kind"] >= 4  # liquidity providers, payment users, borrowers: no orders
        assert lp.sum() > 100 and not a[2][lp].any() and not a[3][lp].any()
        assert np.all(a[0][:n][lp] == 0.0)


def test_rows_in_two_parts_give_the_whole():
    n = 2000
    st = _state(n, 30, 3, 5, 7)
    whole = _tick(cy, st, n, 3, 5)
    s_new = np.zeros_like(st["s"])
    out = _outputs(n, 3)
    hold = st["holdings"].copy()
    for part in np.array_split(np.random.default_rng(1).permutation(n).astype(np.int64), 2):
        _orders(cy, st, part, s_new, hold, out)
    buy, sell, buy_pool, sell_pool, acc_flow, n_orders, acc_s = out
    assert np.array_equal(s_new[:n], whole[0][:n]) and np.array_equal(buy, whole[2])
    assert np.array_equal(to_doubles(normalize(acc_flow)), whole[5][0])
    assert np.array_equal(n_orders, whole[4])


def test_one_fundamentalist_by_hand():
    """Below the oracle price a fundamentalist buys fraction * sig of its quote, pays gas,
    and receives buy / clearing base; holdings and wealth sums follow."""
    st = _state(1, 0, 1, 2, 3, k=0)
    st.update(kind=np.array([2], np.int8), pool=np.array([0], np.int32),
              fraction=np.array([0.1]), gain=np.array([10.0]),
              holdings=np.array([[5.0], [1000.0]]), base_slot=np.array([0]),
              quote_slot=np.array([1]), mispricing=np.array([0.05]), gas=np.array([1.0]),
              min_value=np.array([0.5]), price=np.array([2.0]), clearing=np.array([2.5]))
    s_new, hold, buy, sell, n_orders, sums, _, _ = _tick(cy, st, 1, 1, 2)
    from tokensim_hpc._kernels import rng

    xi = np.empty(1)
    rng.normal4(42, st["gid"], 9, cy.STREAM_TRADER, 0, _words(st["gid"]).T.copy(), xi)
    sig = np.tanh(10.0 * 0.05 + 0.3 * xi[0])
    assert s_new[0] == pytest.approx(sig, rel=1e-15)
    assert buy[0] == pytest.approx(0.1 * sig * 1000.0, rel=1e-15) and sell[0] == 0.0
    assert hold[1, 0] == pytest.approx(1000.0 - buy[0] - 1.0)
    assert hold[0, 0] == pytest.approx(5.0 + buy[0] / 2.5)
    assert n_orders[0] == 1 and sums[0][0] == buy[0]
    # The running totals of the fundamentalists' (type 2) slots got the changes only.
    assert sums[2][2 * 2 + 0] == hold[0, 0] - 5.0 and sums[2][2 * 2 + 1] == hold[1, 0] - 1000.0
    assert not sums[2][:4].any()


def test_small_orders_and_gas():
    """An order worth less than min_value is not placed; nobody pays gas it lacks."""
    st = _state(3, 0, 1, 2, 4, k=0)
    st.update(kind=np.array([0, 0, 0], np.int8), pool=np.zeros(3, np.int32),
              fraction=np.full(3, 1.0), holdings=np.array([[10.0, 10.0, 10.0],
                                                          [0.5, 100.0, 100.0]]),
              base_slot=np.array([0]), quote_slot=np.array([1]), gas=np.array([1.0]),
              min_value=np.array([1e9]), price=np.array([1.0]))
    _, hold, buy, sell, n_orders, _, _, _ = _tick(cy, st, 3, 1, 2)
    assert not buy.any() and not sell.any() and n_orders[0] == 0
    np.testing.assert_array_equal(hold, st["holdings"])


def test_running_totals_equal_a_fresh_sum():
    """Initial totals plus fill_orders' changes = the exact sum of the new holdings,
    per (type, slot)."""
    from tokensim_hpc.numpy_kernels import exactsum

    n, n_slots = 3000, 7
    st = _state(n, 10, 4, n_slots, 11)

    def totals(hold):
        acc = np.zeros((7 * n_slots, NACC), dtype=np.int64)
        row = st["kind"].astype(np.int64) * n_slots
        for slot in range(n_slots):
            exactsum.accumulate_grouped(hold[slot], row + slot, acc)
        return acc

    acc = totals(st["holdings"])
    _, hold, buy, sell, n_orders, _, buy_pool, sell_pool = _tick(cy, st, n, 4, n_slots)
    assert n_orders.sum() > 500
    # Exact accumulators: compare them limb for limb, not as rounded doubles.
    acc_changes = np.zeros((7 * n_slots, NACC), dtype=np.int64)
    cy.fill_orders(st["kind"], buy_pool, sell_pool, buy, sell, st["base_slot"],
                   st["quote_slot"], st["clearing"], st["gas"], st["holdings"].copy(),
                   acc_changes)
    assert np.array_equal(normalize(acc + acc_changes), normalize(totals(hold)))


def test_one_arbitrageur_by_hand():
    """alpha* = spread / (2 kappa): buy alpha in the cheap pool, sell alpha in the dear one."""
    st = _state(1, 0, 2, 4, 5, k=0)
    st.update(kind=np.array([3], np.int8), pool=np.array([0], np.int32),
              pair=np.array([0], np.int32), arb_weight=np.array([1.0]),
              holdings=np.array([[50.0], [1e6], [50.0], [1e6]]),
              base_slot=np.array([0, 2]), quote_slot=np.array([1, 3]),
              price=np.array([110.0, 100.0]), fee=np.array([0.003, 0.001]),
              reserve_base=np.array([1000.0, 2000.0]), gas=np.array([0.5, 0.1]),
              min_value=np.array([1.0, 1.0]), pair_pools=np.array([[0, 1]]),
              pair_cost=np.array([0.002]), clearing=np.array([109.0, 101.0]))
    s_new, hold, buy, sell, n_orders, sums, buy_pool, sell_pool = _tick(cy, st, 1, 2, 4)
    spread = 110.0 * (1 - 0.003) * (1 - 0.002) - 100.0 / (1 - 0.001)
    kappa = 100.0 / 2000.0 + 110.0 / 1000.0
    alpha = spread / (2 * kappa)
    assert buy_pool[0] == 1 and sell_pool[0] == 0  # buys where it is cheap
    assert buy[0] == pytest.approx(alpha * 100.0, rel=1e-14)
    assert sell[0] == pytest.approx(alpha, rel=1e-14)
    assert s_new[0] == 0.0 and n_orders.tolist() == [1, 1]
    # Filled: +alpha*100/101 base and -(alpha*100 + gas) quote on chain 1; -alpha base
    # and +alpha*109 - gas quote on chain 0.
    assert hold[2, 0] == pytest.approx(50.0 + alpha * 100.0 / 101.0)
    assert hold[3, 0] == pytest.approx(1e6 - alpha * 100.0 - 0.1)
    assert hold[0, 0] == pytest.approx(50.0 - alpha)
    assert hold[1, 0] == pytest.approx(1e6 + alpha * 109.0 - 0.5)
    # No gap after fees and bridge cost: no trade.
    st.update(price=np.array([100.2, 100.0]))
    _, _, buy, sell, n_orders, _, _, _ = _tick(cy, st, 1, 2, 4)
    assert buy[0] == 0.0 and sell[0] == 0.0 and n_orders.sum() == 0
    for mod in (cy, tw):
        assert _tick(mod, st, 1, 2, 4)[2][0] == 0.0


def _portfolio(mod, st, agents, hold, drift=0.001, vol=0.05, cost=0.01, tick=9):
    n, n_pools = hold.shape[1], st["price"].shape[0]
    n_slots = hold.shape[0]
    buy, sell = np.full(n, -1.0), np.full(n, -1.0)
    acc_flow = np.zeros((2 * n_pools, NACC), dtype=np.int64)
    n_orders = np.zeros(n_pools, dtype=np.int64)
    acc_h = np.zeros((8 * n_slots, NACC), dtype=np.int64)
    minted = np.zeros((n_slots, NACC), dtype=np.int64)
    mod.portfolio_orders(agents, st["gid"], st["kind"], st["pool"], st["target"],
                         st["risk"], hold, st["base_slot"], st["quote_slot"], st["price"],
                         st["fee"], st["gas"], st["min_value"], drift, vol, cost, 42, tick,
                         buy, sell, acc_flow, n_orders, acc_h, minted)
    return buy, sell, acc_flow, n_orders, acc_h, minted


def _portfolio_state(n, seed):
    st = _state(n, 0, 3, 5, seed)
    rs = np.random.default_rng(seed + 1)
    st["kind"][:] = cy.TYPE_PORTFOLIO
    st["target"] = rs.uniform(0.05, 0.95, n)
    st["risk"] = rs.uniform(0.2, 5.0, n)
    return st


@pytest.mark.parametrize("n", [0, 1, 257, 3000])
def test_portfolio_twin_equal(n):
    st = _portfolio_state(n, 7)
    agents = np.flatnonzero(np.random.default_rng(3).random(n) < 0.7).astype(np.int64)
    results = []
    for mod in (cy, tw):
        hold = st["holdings"].copy()
        results.append((hold,) + _portfolio(mod, st, agents, hold))
    for a, b in zip(*results, strict=True):
        if a.dtype == np.int64 and a.ndim == 2 and a.shape[1] == NACC:
            # Accumulators hold the same exact sums; their limbs may be split
            # differently until normalized.
            a, b = normalize(a.copy()), normalize(b.copy())
        np.testing.assert_array_equal(a, b)
    hold, buy, sell = results[0][:3]
    others = np.setdiff1d(np.arange(n), agents)
    assert np.all(buy[others] == -1.0) and np.all(sell[others] == -1.0)  # untouched
    np.testing.assert_array_equal(hold[:, others], st["holdings"][:, others])
    if n > 1000:
        assert (buy[agents] > 0).sum() > 50 and (sell[agents] > 0).sum() > 50


def test_portfolio_mint_is_the_exact_change_of_holdings():
    """What the SDE adds to every slot is minted; the record is exact (not rounded)."""
    st = _portfolio_state(2000, 11)
    agents = np.arange(2000, dtype=np.int64)
    hold = st["holdings"].copy()
    _, _, _, _, acc_h, minted = _portfolio(cy, st, agents, hold, drift=0.01, vol=0.3)

    for slot in range(hold.shape[0]):
        want = math.fsum(np.concatenate((hold[slot], -st["holdings"][slot])))
        assert to_doubles(normalize(minted[slot:slot + 1].copy()))[0] == want
        # The running totals of the portfolio managers' holdings moved by the same amount.
        row = cy.TYPE_PORTFOLIO * hold.shape[0] + slot
        assert to_doubles(normalize(acc_h[row:row + 1].copy()))[0] == want
    assert np.all(hold >= 0.0)
    # Geometric: an empty holding stays empty.
    assert np.all(hold[st["holdings"] == 0.0] == 0.0)


def test_no_trade_band_by_hand():
    """Without diffusion, an agent inside its band does nothing; one outside trades back
    to the nearer edge of the band: w* -+ (fee + cost) / lambda."""
    st = _portfolio_state(3, 5)
    st["pool"][:] = 0
    st["gas"][:] = 0.0
    st["min_value"][:] = 0.0
    st["fee"][:] = 0.003
    b, q, price = st["base_slot"][0], st["quote_slot"][0], 2.0
    st["price"][:] = price
    st["target"][:] = 0.5
    st["risk"][:] = 0.5  # band = (0.003 + 0.01) / 0.5 = 0.026
    hold = np.zeros((5, 3))
    hold[b] = [50.0, 10.0, 90.0]  # base worth 100, 20, 180 quote
    hold[q] = [100.0, 180.0, 20.0]  # weights 0.5, 0.1, 0.9; wealth 200 each
    buy, sell, acc_flow, n_orders, _, _ = _portfolio(cy, st, np.arange(3), hold, 0.0, 0.0)
    band = (0.003 + 0.01) / 0.5
    assert buy[0] == 0.0 and sell[0] == 0.0
    assert buy[1] == pytest.approx(200.0 * (0.5 - band - 0.1), rel=1e-14)
    assert sell[1] == 0.0 and buy[2] == 0.0
    assert sell[2] == pytest.approx(200.0 * (0.9 - 0.5 - band) / price, rel=1e-14)
    assert n_orders[0] == 2
    # Filled at the same price (no fee): the weights land on the band's edges.
    assert (10.0 + buy[1] / price) * price / 200.0 == pytest.approx(0.5 - band, rel=1e-12)
    assert (90.0 - sell[2]) * price / 200.0 == pytest.approx(0.5 + band, rel=1e-12)
    assert to_doubles(normalize(acc_flow[0:1].copy()))[0] == buy[1]
    assert to_doubles(normalize(acc_flow[1:2].copy()))[0] == sell[2]
    # A wider band (more risk tolerant) leaves agent 1 alone too.
    st["risk"][:] = 0.013 / 0.45
    buy, sell, *_ = _portfolio(cy, st, np.arange(3), hold.copy(), 0.0, 0.0)
    assert buy[1] == 0.0 and sell[2] == 0.0
