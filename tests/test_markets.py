"""Markets: validated chains/pools/bridges, AMM closed forms and batch clearing, bridges."""

import math
import tomllib

import numpy as np
import pytest

from tokensim_hpc.errors import ScenarioError
from tokensim_hpc.markets.amm import PoolBook, amount_in, amount_out, batch_clear
from tokensim_hpc.markets.bridges import BridgeBook, InFlight
from tokensim_hpc.markets.spec import parse_markets

MARKETS = """
[[chains]]
name = "ethereum"
tokens = ["ETH", "USDC"]
gas_fee = 2.0

[[chains]]
name = "arbitrum"
tokens = ["ETH", "USDC", "ARB"]
block_interval = 2

[[pools]]
chain = "ethereum"
base = "ETH"
quote = "USDC"
reserve_base = 1000.0
reserve_quote = 2000000.0

[[pools]]
chain = "arbitrum"
base = "ARB"
quote = "USDC"
reserve_base = 500000.0
reserve_quote = 400000.0
fee = 0.01

[[bridges]]
from = "ethereum"
to = "arbitrum"
token = "USDC"
rate = 0.998
delay = 3
liquidity = 1000.0

[[bridges]]
from = "arbitrum"
to = "ethereum"
token = "ETH"
rate = 0.99
delay = 1
liquidity = 5.0
"""


def markets(text=MARKETS):
    return parse_markets(tomllib.loads(text))


# -- the market tables -----------------------------------------------------------


def test_parse_and_slots():
    m = markets()
    assert [c.name for c in m.chains] == ["ethereum", "arbitrum"]
    assert m.chains[0].gas_fee == 2.0 and m.chains[1].block_interval == 2
    assert m.pools[1].fee == 0.01 and m.pools[0].fee == 0.003
    assert m.bridges[0].from_chain == "ethereum" and m.bridges[0].delay == 3
    assert m.slots() == [("ethereum", "ETH"), ("ethereum", "USDC"), ("arbitrum", "ETH"),
                         ("arbitrum", "USDC"), ("arbitrum", "ARB")]
    # The TOML written back parses to the same markets.
    assert markets(m.to_toml()) == m


def _replace(old, new):
    assert old in MARKETS
    return MARKETS.replace(old, new, 1)


@pytest.mark.parametrize("text, words", [
    (_replace('base = "ARB"', 'base = "BTC"'),
     ["pools[1].base", "'BTC'", "token of chain 'arbitrum'", "'ARB'"]),
    (_replace("reserve_base = 1000.0", "reserve_base = -5.0"),
     ["pools[0].reserve_base", "-5.0", "> 0"]),
    (_replace('to = "arbitrum"', 'to = "solana"'),
     ["bridges[0].to", "'solana'", "one of the chains", "'ethereum', 'arbitrum'"]),
    (_replace('token = "ETH"', 'token = "ARB"'),
     ["bridges[1].token", "'ARB'", "token of chain 'ethereum'"]),
    (_replace('chain = "ethereum"', 'chain = "eth"'), ["pools[0].chain", "'eth'"]),
    (_replace("rate = 0.998", "rate = 1.5"), ["bridges[0].rate", "1.5", "(0.0, 1.0]"]),
    (_replace("delay = 3", "delay = 0"), ["bridges[0].delay", "0", ">= 1"]),
    (_replace("fee = 0.01", "fee = 1.0"), ["pools[1].fee", "1.0", "[0, 1)"]),
    (_replace('quote = "USDC"\nreserve_base = 1000.0', 'quote = "ETH"\nreserve_base = 1000.0'),
     ["pools[0].quote", "differ from the base"]),
    (_replace('name = "arbitrum"', 'name = "ethereum"'), ["chains[1].name", "unique"]),
    (_replace('tokens = ["ETH", "USDC"]', 'tokens = ["ETH", "ETH"]'),
     ["chains[0].tokens", "twice"]),
    (_replace('tokens = ["ETH", "USDC"]', 'tokens = "ETH"'), ["chains[0].tokens", "list"]),
    (_replace("reserve_quote = 2000000.0\n", ""), ["pools[0].reserve_quote", "missing"]),
    (_replace('from = "ethereum"\n', ""), ["bridges[0].from", "missing"]),
    (_replace("gas_fee = 2.0", "gas = 2.0"), ["chains[0].gas", "unknown key", "gas_fee"]),
    (_replace("delay = 3", "delay = 2.5"), ["bridges[0].delay", "2.5", "integer"]),
])
def test_misconfigured_markets_are_refused(text, words):
    with pytest.raises(ScenarioError) as err:
        markets(text)
    for w in words:
        assert w in str(err.value), (w, str(err.value))


# -- AMM -------------------------------------------------------------------------


def test_amount_out_closed_form_and_inverse():
    rs = np.random.default_rng(1)
    x, y = rs.uniform(1e3, 1e7, 200), rs.uniform(1e3, 1e7, 200)
    a, f = x * 10.0 ** rs.uniform(-9, 1, 200), rs.uniform(0, 0.05, 200)
    out = amount_out(x, y, a, f)
    expect = [yy * aa * (1 - ff) / (xx + aa * (1 - ff))
              for xx, yy, aa, ff in zip(x, y, a, f, strict=True)]
    np.testing.assert_allclose(out, expect, rtol=1e-14)
    np.testing.assert_allclose(amount_in(x, y, out, f), a, rtol=1e-9)


def test_swaps_never_decrease_k():
    rs = np.random.default_rng(2)
    x, y = 1e6, 3e6
    for _ in range(2000):
        a = 10.0 ** rs.uniform(-6, 6)
        if rs.random() < 0.5:
            o = amount_out(x, y, a, 0.003)
            k_new = (x + a) * (y - o)
            assert k_new >= x * y
            x, y = x + a, y - o
        else:
            o = amount_out(y, x, a, 0.003)
            k_new = (x - o) * (y + a)
            assert k_new >= x * y
            x, y = x - o, y + a


def _random_orders(rs, n):
    buys = np.where(rs.random(n) < 0.5, rs.exponential(100.0, n), 0.0)
    sells = np.where(buys == 0, rs.exponential(0.05, n), 0.0)
    return buys, sells


@pytest.mark.parametrize("seed", range(5))
def test_batch_clearing_conserves_and_fills_at_one_price(seed):
    """Every order at one price; agents' change + pool's change = 0 per token; k grows."""
    rs = np.random.default_rng(seed)
    book = PoolBook(markets())
    for _ in range(50):
        n = 1000
        buys = [_random_orders(rs, n) for _ in range(book.n_pools)]
        q = np.array([b.sum() for b, _ in buys])
        b = np.array([s.sum() for _, s in buys])
        x0, y0, k0 = book.base.copy(), book.quote.copy(), book.invariant()
        price = book.clear(q, b)
        for p in range(book.n_pools):
            bq, sb = buys[p]
            agent_base = np.sum(bq / price[p]) - np.sum(sb)   # received - given
            agent_quote = np.sum(sb * price[p]) - np.sum(bq)
            scale_b, scale_q = x0[p] + sb.sum(), y0[p] + bq.sum()
            assert abs(agent_base + (book.base[p] - x0[p])) <= 1e-12 * scale_b
            assert abs(agent_quote + (book.quote[p] - y0[p])) <= 1e-12 * scale_q
        assert np.all(book.invariant() >= k0 * (1 - 1e-15))


def test_batch_clearing_cases():
    x, y, f = np.full(5, 1000.0), np.full(5, 2000.0), np.full(5, 0.003)
    g = 1 - 0.003
    q = np.array([0.0, 500.0, 0.0, 200.0, 100.0])
    b = np.array([0.0, 0.0, 40.0, 100.0, 0.05])
    price, quote_in, base_out = batch_clear(x, y, f, q, b)
    # No orders: the pool price, no trade.
    assert price[0] == 2.0 and quote_in[0] == 0 and base_out[0] == 0
    # Only buyers: one swap of Q through the pool, closed form.
    assert quote_in[1] == 500.0
    assert base_out[1] == pytest.approx(1000.0 * 500 * g / (2000 + 500 * g), rel=1e-15)
    assert price[1] == pytest.approx(500.0 / base_out[1], rel=1e-15)
    # Only sellers: the pool buys B base for out(B) quote.
    assert base_out[2] == -40.0
    assert -quote_in[2] == pytest.approx(2000.0 * 40 * g / (1000 + 40 * g), rel=1e-15)
    # Q / B = 2 = the pool price, inside the fee band: orders cross, the pool rests.
    assert price[3] == 2.0 and quote_in[3] == 0 and base_out[3] == 0
    # Mostly buyers: the imbalance d = Q - B p goes through the pool at p.
    d = 100.0 - 0.05 * price[4]
    assert quote_in[4] == pytest.approx(d, rel=1e-12)
    assert base_out[4] == pytest.approx(1000.0 * d * g / (2000 + d * g), rel=1e-12)


def test_clearing_price_is_continuous_across_the_fee_band():
    x, y, f = np.array([1000.0]), np.array([2000.0]), np.array([0.003])
    g = 1 - 0.003
    for edge in (y[0] / (g * x[0]), g * y[0] / x[0]):  # the band's two edges, Q / B
        b = np.array([10.0])
        for eps in (-1e-9, 1e-9):
            q = b * edge * (1 + eps)
            price, _, _ = batch_clear(x, y, f, q, b)
            assert price[0] == pytest.approx(edge, rel=1e-8)


def test_liquidity_add_and_remove():
    book = PoolBook(markets())
    p0, supply0 = book.prices().copy(), book.lp_supply.copy()
    used_b, used_q, shares = book.add_liquidity([10.0, 1000.0], [1e9, 400.0])
    # At the pool's ratio, limited by the scarcer side; the price does not move.
    np.testing.assert_allclose(used_b, [10.0, 500.0])
    np.testing.assert_allclose(used_q, [20000.0, 400.0])
    np.testing.assert_allclose(book.prices(), p0, rtol=1e-15)
    np.testing.assert_allclose(shares / supply0, [0.01, 0.001])
    out_b, out_q = book.remove_liquidity(shares)
    np.testing.assert_allclose(out_b, used_b, rtol=1e-12)
    np.testing.assert_allclose(out_q, used_q, rtol=1e-12)
    with pytest.raises(ValueError):
        book.remove_liquidity(book.lp_supply * 2)


# -- bridges ---------------------------------------------------------------------


def test_bridge_delivers_after_exactly_delay_ticks():
    m = markets()
    book = BridgeBook(m)
    assert book.n_directions == 4
    # Direction 0: ethereum -> arbitrum USDC, delay 3, rate 0.998.
    assert book.src_slot[0] == m.slot_index("ethereum", "USDC")
    assert book.dst_slot[0] == m.slot_index("arbitrum", "USDC")
    assert book.dst_slot[3] == m.slot_index("arbitrum", "ETH")  # arbitrum <- ethereum ETH
    frac = book.send(10, [100.0, 0.0, 0.0, 2.0])
    np.testing.assert_array_equal(frac, 1.0)
    for t in range(10, 14):
        got = book.arrive(t)
        if t == 13:
            assert got[0] == pytest.approx(99.8, rel=1e-15)
        else:
            assert got[0] == 0.0
        if t == 11:  # delay 1
            assert got[3] == pytest.approx(1.98, rel=1e-15)
        else:
            assert got[3] == 0.0
    assert np.all(book.in_flight() == 0.0)


def test_bridge_liquidity_limits_pro_rata_and_conserves():
    m = markets()
    book = BridgeBook(m)
    n_slots = len(m.slots())
    before = book.slot_totals(n_slots)
    # 2000 USDC asked ethereum -> arbitrum, but the arbitrum vault holds 1000.
    frac = book.send(0, [2000.0, 0.0, 0.0, 0.0])
    assert frac[0] == pytest.approx(1000.0 / (0.998 * 2000.0), rel=1e-15)
    assert book.vault[0, 1] == 0.0 and book.vault[0, 0] == pytest.approx(1000 + 2000 * frac[0])
    after = book.slot_totals(n_slots)
    src, dst = book.src_slot[0], book.dst_slot[0]
    # The sending slot gained what the agents gave; the receiving slot is unchanged
    # (vault -> in flight).
    assert after[src] - before[src] == pytest.approx(2000.0 * frac[0], rel=1e-15)
    assert after[dst] == pytest.approx(before[dst], rel=1e-15)
    # A further request finds no liquidity.
    assert book.send(1, [5.0, 0.0, 0.0, 0.0])[0] == 0.0


def test_in_flight_queue_delivers_each_transfer_once_at_its_tick():
    q = InFlight()
    q.push([0, 5, 5], [0, 0, 3], [1.0, 2.0, 3.0], [4, 4, 6])
    q.push([7], [1], [4.0], [4])
    np.testing.assert_array_equal(q.totals(4), [3.0, 4.0, 0.0, 3.0])
    for t in range(4):
        assert len(q.pop_due(t)[0]) == 0
    agent, direction, amount = q.pop_due(4)
    np.testing.assert_array_equal(agent, [0, 5, 7])
    np.testing.assert_array_equal(amount, [1.0, 2.0, 4.0])
    assert len(q) == 1 and len(q.pop_due(4)[0]) == 0
    agent, direction, amount = q.pop_due(6)
    assert agent.tolist() == [5] and direction.tolist() == [3] and amount.tolist() == [3.0]
    assert len(q) == 0 and math.isclose(q.totals(4).sum(), 0.0)


# -- oracle ----------------------------------------------------------------------


def test_gbm_oracle_is_seeded_counter_based_and_has_the_right_law():
    from tokensim_hpc._kernels import rng as cy_rng
    from tokensim_hpc.markets.oracle import GBMOracle
    from tokensim_hpc.numpy_kernels import rng as np_rng

    n = 4000
    p0, mu, sigma, dt = np.full(n, 100.0), np.full(n, 0.1), np.full(n, 0.5), 1 / 24

    def path(normal, ticks=24):
        o = GBMOracle(p0, mu, sigma, dt, 7, normal)
        return np.array([o.step() for _ in range(ticks)])

    a, b = path(cy_rng.normal), path(np_rng.normal)
    assert np.array_equal(a, b)  # both backends, no generator state
    assert np.array_equal(a, path(cy_rng.normal))
    # ln(P(1 day) / P0) ~ N((mu - sigma^2/2) * 1, sigma^2 * 1) across the 4000 assets.
    r = np.log(a[-1] / 100.0)
    assert abs(r.mean() - (0.1 - 0.125)) < 4 * 0.5 / math.sqrt(n)
    assert abs(r.std() - 0.5) < 0.03
    assert not np.array_equal(a, GBMOracle(p0, mu, sigma, dt, 8, cy_rng.normal).step()[None])


def test_kalman_filter_reduces_noise_and_follows_the_level(tmp_path):
    from tokensim_hpc.markets.oracle import TableOracle, kalman_smooth, read_csv_prices

    rs = np.random.default_rng(3)
    level = 100 * np.exp(np.cumsum(rs.normal(0, 0.001, (500, 2)), axis=0))
    noisy = level + rs.normal(0, 1.0, level.shape)
    smooth = kalman_smooth(noisy, q=0.01, r=1.0)
    err_raw = np.sqrt(np.mean((noisy[50:] - level[50:]) ** 2))
    err_kf = np.sqrt(np.mean((smooth[50:] - level[50:]) ** 2))
    assert err_kf < 0.5 * err_raw
    # The steady-state gain of the scalar filter: K = P/(P+r) with P = ((q^2+4qr)^.5 + q)/2.
    one = kalman_smooth(np.array([[1.0], [2.0], [2.0]]), q=0.0, r=1.0)
    assert one[1, 0] == pytest.approx(1.5) and one[2, 0] == pytest.approx(1.0 + 2 / 3)
    # A missing price carries the estimate over.
    gap = kalman_smooth(np.array([[1.0], [np.nan], [1.0]]), q=1.0, r=1.0)
    assert gap[1, 0] == 1.0
    f = tmp_path / "prices.csv"
    f.write_text("tick,BTC,ETH\n0,100,10\n1,101,11\n2,102,12\n")
    table = read_csv_prices(str(f), ["ETH", "BTC"])
    np.testing.assert_array_equal(table, [[10, 100], [11, 101], [12, 102]])
    o = TableOracle(table)
    assert o.step().tolist() == [11.0, 101.0]
    with pytest.raises(ValueError, match="needs 4"):
        o.check_length(3)
    with pytest.raises(ValueError, match="no column 'SOL'"):
        read_csv_prices(str(f), ["SOL"])
