"""The tokenized economy (``run.model = "defi"``) on a partitioned domain.

Markets (chains, constant-product pools; ``tokensim_hpc.markets``) are
replicated on every rank. Agents are struct-of-arrays over the owned ones:
a type code, a home pool, heterogeneous strategy parameters (order
fraction, fundamental gain; lognormal, drawn by global id), a sentiment
(also over ghost slots, for the herding traders' neighbour sums) and
holdings per (chain, token) slot. A tick:

1. the oracle prices step (seeded GBM, one per base token);
2. halo exchange of sentiment, overlapped with the order kernel on interior
   agents; the kernel on boundary agents;
3. one exact reduction of every pool's buy and sell flow and of sentiment
   per type; every rank clears the same batches in the same pools;
4. fills at the clearing prices with gas burned, then one exact reduction
   of holdings per slot and wealth per type.

Everything an agent does depends on its global id, the tick and the
reduced totals only, so the run is bit-identical on any number of ranks.
"""

from __future__ import annotations

import math

import numpy as np

from .._kernels.exactsum import normalize
from ..markets.amm import PoolBook
from ..markets.oracle import GBMOracle, TableOracle, read_prices
from ..markets.spec import arbitrage_pairs
from ..memory import small_pages
from ..parallel.messages import MessageBoard
from ..parallel.reduce import allreduce_exact, allreduce_sum_int, new_accumulators
from ..risk.centrality import in_strength, top_agents
from .defi_bridging import InventoryBridging
from .defi_clusters import Clusters
from .defi_exposure import ExposureRisk
from .defi_lending import Borrowers
from .defi_liquidity import LiquidityProviders
from .defi_network import COUNT_LABELS, NetworkFormation
from .defi_payments import PaymentUsers
from .defi_risk import SystemicRisk
from .holdings import record_changes

TOP_CLUSTERS = 5  # clusters whose aggregates are recorded, the largest first
TOP_CENTRAL = 20  # most central agents recorded per snapshot
TYPE_NAMES = ("noise", "herding", "fundamentalist", "arbitrageur", "liquidity", "payment",
              "borrower", "portfolio")
# Draws of the set-up stream (a counter-based stream of its own, tick 0).
STREAM_SETUP = 4
_DRAW_TYPE, _DRAW_POOL, _DRAW_FRACTION, _DRAW_GAIN, _DRAW_LEVERAGE = 0, 1, 2, 3, 4
_DRAW_TARGET, _DRAW_RISK = 5, 6


class Defi:
    """Economy state and step on one rank's domain.

    Parameters
    ----------
    domain : :class:`tokensim_hpc.engine.Domain`
    scenario : :class:`tokensim_hpc.scenario.Scenario` (``run.model = "defi"``)
    kernels : namespace of kernel modules (``kernels.defi``, ``kernels.rng``)
    overlap : bool
    """

    def __init__(self, domain, scenario, kernels, overlap=True):
        self.d = domain
        self.p = p = scenario.model
        self.market = scenario.markets
        self.k = kernels.defi
        self.rng = kernels.rng
        self.es = kernels.exactsum
        self.seed = int(scenario.run.seed)
        self.overlap = overlap
        self.pools = PoolBook(self.market)
        self.slots = self.market.slots()
        self.chain_names = [c.name for c in self.market.chains]
        n, n_pools = domain.n_owned, self.pools.n_pools
        self._n_flow = 2 * n_pools  # rows of the order-flow accumulators (Q, B per pool)
        self._setup_agents(n, n_pools)
        # Per pool: the gas fee of its chain, the smallest order, the chain's block interval.
        chains = self.market.chains
        self.gas = np.array([chains[c].gas_fee for c in self.pools.chain])
        self.block_interval = np.array([chains[c].block_interval for c in self.pools.chain])
        self.min_value = np.maximum(p.min_order, p.min_order_gas * self.gas)
        self.slot_value = np.zeros(len(self.slots))
        self.price_prev = self.pools.prices()
        self.clearing = self.pools.prices()
        # One oracle per base token symbol, started at the first pool quoting it.
        bases = [pl.base for pl in self.market.pools]
        self.assets = self.market.base_assets()
        self.pool_asset = np.array([self.assets.index(b) for b in bases], dtype=np.int64)
        p0 = [self.clearing[bases.index(a)] for a in self.assets]
        if p.oracle_file:
            # Checked before the run (runner); each rank reads the small table itself
            # (CSV, or HDF5 opened read-only with the serial driver).
            table = read_prices(p.oracle_file, self.assets)
            self.oracle = TableOracle(table, *((p.oracle_kalman_q, p.oracle_kalman_r)
                                               if p.oracle_kalman_q > 0 else (None, None)))
        else:
            self.oracle = GBMOracle(p0, [p.oracle_mu] * len(p0), [p.oracle_sigma] * len(p0),
                                    1.0 / p.ticks_per_day, self.seed, self.rng.normal)
        self.gas_burned = np.zeros(len(chains))
        self.bridging = InventoryBridging(self.market, self.pair_pools, self.pools,
                                          p.rebalance_ratio)
        # Stress shocks (scenario [stress]): oracle factors, bridges to reopen.
        self.shocks = scenario.stress
        self.oracle_factor = np.ones(len(self.assets))
        # Per bridge: the first tick it is open again after halts (0: never halted).
        self._halted_until = np.zeros(len(self.market.bridges))
        self.lp_shares = np.zeros(n)
        self.providers = LiquidityProviders(np.flatnonzero(self.kind == self.k.TYPE_LIQUIDITY),
                                            p.lp_fraction,
                                            p.lp_calm, p.lp_stress)
        # Leverage: lognormal around model.leverage (spread heterogeneity / 4), kept below
        # the liquidation threshold so that nobody starts insolvent.
        debtors = np.flatnonzero(self.kind == self.k.TYPE_BORROWER)
        leverage = np.minimum(p.leverage * np.exp(0.25 * p.heterogeneity
                                                  * self._draws(_DRAW_LEVERAGE, True)),
                              0.99 * p.liquidation_threshold)[debtors]
        # One message board for payments and liquidations (each step settles its own
        # immediate messages before the next posts).
        self.board = MessageBoard(domain.comm, domain.gid, p.message_threshold,
                                  p.message_delay)
        self.network = NetworkFormation(domain, scenario, kernels)
        self.edge_strength = self.network.eta0  # mean, at the last pruning
        self.risk = SystemicRisk(domain, scenario.risk.every, scenario.risk.halflife, kernels)
        self.exposure = ExposureRisk(domain, scenario.risk)
        self.cluster_every = scenario.clusters.every
        self.clusters = Clusters(domain, scenario.clusters.theta, kernels)
        # Before the first clustering every agent is its own cluster.
        self.cluster_counts = (float(domain.n_total), 1.0)
        self.top_clusters = np.full((3, TOP_CLUSTERS), np.nan)  # size, sentiment, wealth
        self.borrowers = Borrowers(domain, debtors, self.pool, self.pools, self.holdings, p,
                                   leverage, self.board)
        # Exact running totals of holdings, row type * n_slots + slot (see fill_orders),
        # once every holding is set (borrowers have moved theirs into collateral).
        n_slots = len(self.slots)
        self._acc_hold = new_accumulators(len(TYPE_NAMES) * n_slots)
        kind = self.kind.astype(np.int64) * n_slots
        for slot in range(n_slots):
            self.es.accumulate_grouped(self.holdings[slot], kind + slot, self._acc_hold)
        payers = np.flatnonzero(self.kind == self.k.TYPE_PAYMENT)
        self.payments = PaymentUsers(domain, payers, self.pools.quote_slot[self.pool[payers]],
                                     p, self.rng, self.seed, self.board)
        self._update_slot_values()

    # -- set-up ----------------------------------------------------------------

    def _draws(self, draw, normal=False):
        out = np.empty(self.d.n_owned)
        (self.rng.normal if normal else self.rng.uniform)(self.seed, self.d.gid, 0, STREAM_SETUP,
                                                          draw, out)
        return out

    def _setup_agents(self, n, n_pools):
        p, d = self.p, self.d
        u = self._draws(_DRAW_TYPE)
        shares = p.type_shares()
        self.kind = np.searchsorted(np.cumsum(shares[:-1]), u, side="right").astype(np.int8)
        # u just above a rounded cumulative share can land on a type whose share is 0:
        # give those agents to the nearest type below (or above) that has a share.
        for t, share in enumerate(shares):
            if share == 0.0:
                below = [k for k in range(t) if shares[k] > 0.0]
                above = [k for k in range(t + 1, len(shares)) if shares[k] > 0.0]
                self.kind[self.kind == t] = below[-1] if below else above[0]
        u_pool = self._draws(_DRAW_POOL)
        self.pool = np.minimum((u_pool * n_pools).astype(np.int32), n_pools - 1).astype(np.int32)
        h = p.heterogeneity
        self.fraction = np.minimum(
            p.order_fraction * np.exp(h * self._draws(_DRAW_FRACTION, True)), 1.0)
        self.gain = p.fundamental_gain * np.exp(h * self._draws(_DRAW_GAIN, True))
        # Portfolio managers: a target weight of base (logit-normal around the median) and
        # a risk aversion (lognormal); drawn for every agent so that ids alone decide them.
        logit = math.log(p.portfolio_target / (1.0 - p.portfolio_target))
        self.target = 1.0 / (1.0 + np.exp(-(logit + h * self._draws(_DRAW_TARGET, True))))
        self.risk_aversion = p.portfolio_risk_aversion * np.exp(
            h * self._draws(_DRAW_RISK, True))
        self.portfolio_agents = np.flatnonzero(self.kind == self.k.TYPE_PORTFOLIO)
        # Arbitrageurs: a pair of pools each, half of their holdings on either side.
        pairs = arbitrage_pairs(self.market) or [(0, 0, 0.0)]
        self.pair_pools = np.array([(a, b) for a, b, _ in pairs], dtype=np.int64).reshape(-1, 2)
        self.pair_cost = np.array([c for _, _, c in pairs], dtype=np.float64)
        arb = self.kind == self.k.TYPE_ARBITRAGEUR
        self.pair = np.full(n, -1, dtype=np.int32)
        self.pair[arb] = np.minimum((u_pool[arb] * len(pairs)).astype(np.int32), len(pairs) - 1)
        self.pool[arb] = self.pair_pools[self.pair[arb], 0]
        self.holdings = np.zeros((len(self.slots), n))
        cols = np.arange(n)
        prices = self.pools.prices()
        share = np.where(arb, 0.5, 1.0)
        for side in (0, 1):
            on = cols if side == 0 else cols[arb]
            pl = self.pool[on] if side == 0 else self.pair_pools[self.pair[on], 1]
            self.holdings[self.pools.quote_slot[pl], on] += p.quote0 * share[on]
            self.holdings[self.pools.base_slot[pl], on] += \
                p.base_value0 * share[on] / prices[pl]
        # Each arbitrageur's share of its pair's optimal size: its fraction over the
        # pair's total (an exact sum over all ranks).
        acc = new_accumulators(len(pairs))
        self.es.accumulate_grouped(self.fraction[arb], self.pair[arb].astype(np.int64), acc)
        total = allreduce_exact(d.comm, acc)
        self.arb_weight = np.zeros(n)
        self.arb_weight[arb] = self.fraction[arb] / total[self.pair[arb]]
        self.buy_pool = self.pool.copy()
        self.sell_pool = self.pool.copy()
        slots = n + d.halo.n_ghost
        # Written here (np.full), not left to fault in page by page in the first tick:
        # the per-agent state is set up with the model, like the holdings.
        self.s = np.full(slots, 0.0)
        self.s_new = np.full(slots, 0.0)
        self.buy = np.full(n, 0.0)
        self.sell = np.full(n, 0.0)
        # Philox blocks of the traders' shocks, one per agent, each serving four ticks.
        self.shock_words = np.full((4, n), 0, dtype=np.uint64)
        self._shock_window = -1
        self.type_counts = allreduce_sum_int(d.comm, np.bincount(self.kind,
                                                                 minlength=len(TYPE_NAMES)))

    def _update_slot_values(self):
        """Quote value of one unit of each slot: pool price for a base token, 1 for a
        quote token, 0 for a token no pool trades."""
        self.slot_value[:] = 0.0
        prices = self.pools.prices()
        for i in range(self.pools.n_pools - 1, -1, -1):  # the first pool of a token wins
            self.slot_value[self.pools.quote_slot[i]] = 1.0
        for i in range(self.pools.n_pools - 1, -1, -1):
            self.slot_value[self.pools.base_slot[i]] = prices[i]

    # -- output metadata -------------------------------------------------------

    @property
    def _n_central(self) -> int:
        """How many of the most central agents a snapshot records."""
        return min(TOP_CENTRAL, self.d.n_total)

    def axes(self) -> dict:
        """Labels of the second axes of the model's datasets."""
        return {"pools": self.pools.names, "slots": [f"{c}:{t}" for c, t in self.slots],
                "chains": self.chain_names, "types": list(TYPE_NAMES),
                "directions": self.bridging.labels(self.market),
                "top_clusters": [str(i + 1) for i in range(TOP_CLUSTERS)],
                "central": [str(i + 1) for i in range(self._n_central)],
                "formation": list(COUNT_LABELS),
                "agent_type": list(TYPE_NAMES), "agent_pool": self.pools.names}

    def static_columns(self) -> dict:
        return {"type": self.kind.astype(np.int64), "pool": self.pool.astype(np.int64),
                "target_weight": self.target, "risk_aversion": self.risk_aversion}

    def snapshot(self) -> dict:
        """Owned agents' columns for an output snapshot, and the most central agents.
        Collective (the in-strengths and the top agents are)."""
        col, debt = self.borrowers.columns(self.d.n_owned)
        strength = in_strength(self.d, self.network.eta)
        ids, scores = top_agents(self.d, strength, self._n_central)
        wealth = self.agent_wealth()
        return {"sentiment": self.s[:self.d.n_owned], "holdings": self.holdings,
                "in_strength": strength, "central_id": ids, "central_strength": scores,
                "lp_shares": self.lp_shares, "collateral": col, "debt": debt,
                "cluster": self.clusters.labels, "wealth": wealth,
                "credit_loss": self.payments.credit.loss,
                "edge_owed": self.payments.credit.liability(),
                **self.exposure.snapshot(self.payments.credit.owing_edges(), wealth,
                                         self._n_central),
                **self.network.snapshot()}

    def close(self) -> None:
        """Free what the model holds beyond numpy arrays (PETSc matrices). Collective."""
        self.exposure.close()

    # -- a tick ----------------------------------------------------------------

    def _orders(self, rows, tick, prices, momentum, mispricing, min_value):
        p, d, pools = self.p, self.d, self.pools
        self.k.trader_orders(rows, d.indptr, d.indices, d.uniform_weight, self.s, self.s_new,
                             d.gid, self.shock_words, self.kind, self.pool, self.fraction,
                             self.gain, self.pair,
                             self.arb_weight, self.holdings, pools.base_slot, pools.quote_slot,
                             momentum, mispricing, self.gas, min_value, prices,
                             pools.fee, pools.base, self.pair_pools, self.pair_cost,
                             p.w_self, p.w_neighbours, p.w_momentum, p.sigma, p.noise_sigma,
                             self.seed, tick, self.buy, self.sell, self.buy_pool,
                             self.sell_pool, self._acc[:self._n_flow], self._n_orders,
                             self._acc[self._n_flow:self._n_flow + len(TYPE_NAMES)])

    def _portfolios(self, tick, prices, min_value):
        """Portfolio managers' holdings diffuse, then their rebalancing orders. Local."""
        p, pools = self.p, self.pools
        dt = 1.0 / p.ticks_per_day
        n_rows = self._n_flow + len(TYPE_NAMES)
        self.k.portfolio_orders(self.portfolio_agents, self.d.gid, self.kind, self.pool,
                                self.target, self.risk_aversion, self.holdings,
                                pools.base_slot, pools.quote_slot, prices, pools.fee, self.gas,
                                min_value, p.portfolio_drift * dt,
                                p.portfolio_vol * math.sqrt(dt), p.portfolio_cost, self.seed,
                                tick, self.buy, self.sell, self._acc[:self._n_flow],
                                self._n_orders, self._acc_hold,
                                self._acc[n_rows:n_rows + len(self.slots)])

    def _momentum(self, prices, before):
        """clip(momentum_scale * ln(P / P_before), -1, 1) per pool."""
        return np.clip(self.p.momentum_scale * np.log(prices / before), -1.0, 1.0)

    def step(self, tick: int, timers) -> dict:
        """Advance one tick; return its record (identical on every rank). Collective."""
        d, pools = self.d, self.pools
        n_pools = pools.n_pools
        removed = self._apply_shocks(tick)
        oracle = (self.oracle.step() * self.oracle_factor)[self.pool_asset]
        prices = pools.prices()
        momentum = self._momentum(prices, self.price_prev)
        mispricing = np.log(oracle / prices)
        # Chains between blocks take no orders this tick.
        min_value = np.where(tick % self.block_interval == 0, self.min_value, math.inf)
        n_slots, n_types = len(self.slots), len(TYPE_NAMES)
        with timers("bridges"):
            delivered = self.bridging.deliver(tick, self.holdings, self.kind, self._acc_hold,
                                              self.es)
        if tick >> 2 != self._shock_window:
            with timers("kernel"):
                self._shock_window = tick >> 2
                self.rng.random_raw_lanes(self.seed, d.gid, tick >> 2, self.k.STREAM_TRADER, 0,
                                          self.shock_words)
        # Rows: order flow (Q, B per pool), sentiment per type, portfolio mint per slot.
        self._acc = new_accumulators(2 * n_pools + n_types + n_slots)
        self._n_orders = np.zeros(n_pools, dtype=np.int64)
        with timers("halo+kernel"):
            if self.overlap:
                pending = d.halo.start(self.s)
                self._orders(d.interior_rows, tick, prices, momentum, mispricing, min_value)
                d.halo.finish(pending)
                self._orders(d.boundary_rows, tick, prices, momentum, mispricing, min_value)
            else:
                d.halo.exchange(self.s)
                self._orders(d.all_rows, tick, prices, momentum, mispricing, min_value)
        with timers("portfolios"):
            self._portfolios(tick, prices, min_value)
        if self.network.enabled:
            with timers("network"):
                self.network.strengths(self.s)
        with timers("reduce"):
            sentiment_rows = slice(2 * n_pools, 2 * n_pools + n_types)
            sums = allreduce_exact(d.comm, _append_total(self._acc, sentiment_rows))
            n_orders = allreduce_sum_int(d.comm, self._n_orders)
        buy_quote, sell_base = sums[0:2 * n_pools:2], sums[1:2 * n_pools:2]
        sentiment_by_type = sums[sentiment_rows]
        portfolio_flow = sums[2 * n_pools + n_types:-1]
        with timers("clearing"):
            self.price_prev = prices
            self.clearing = pools.clear(buy_quote, sell_base)
            gas = n_orders * self.gas
            burned = np.bincount(pools.chain, weights=gas, minlength=len(self.chain_names))
            self.gas_burned += burned
        with timers("kernel"):
            self.k.fill_orders(self.kind, self.buy_pool, self.sell_pool, self.buy, self.sell,
                               pools.base_slot, pools.quote_slot, self.clearing, self.gas,
                               self.holdings, self._acc_hold)
        with timers("bridges"):
            sent = self.bridging.send(d.comm, tick, self.holdings, self.kind, self.pair,
                                      self._acc_hold, self.es)
        with timers("liquidity"):
            _, _, minted_lp, burned_lp = self.providers.step(
                d.comm, pools, self.pool, self._momentum(pools.prices(), prices), self.holdings,
                self.lp_shares, self.kind, self._acc_hold, self.es)
        with timers("payments"):
            (minted, spent, paid, pay_flight, owed, lent, repaid,
             written_off), defaults = self.payments.step(tick, self.holdings, self.kind,
                                                         self._acc_hold, self.es)
        with timers("liquidations"):
            (liquidations, liquidated, rounds, protocol, collateral,
             debt) = self.borrowers.step(tick, pools, self.holdings, self.kind, self._acc_hold,
                                         self.es)
        # Quote values of the slots at the tick's final pool prices (clearing, liquidity
        # and liquidations all move them), for the wealth figures below.
        self._update_slot_values()
        if self.cluster_every and tick % self.cluster_every == 0:
            with timers("clusters"), small_pages():
                features = np.column_stack((self.s_new[:d.n_owned], np.log(self.fraction)))
                labels = self.clusters.find(features)
                n_clusters, top, sizes = self.clusters.sizes(TOP_CLUSTERS)
                self.cluster_counts = (float(n_clusters), float(sizes[0]))
                self.top_clusters = self._top_cluster_aggregates(labels, top, sizes)
        with timers("reduce"):
            normalize(self._acc_hold)
            by_type = self._acc_hold.reshape(n_types, n_slots, -1)
            totals = allreduce_exact(d.comm, np.vstack((self._acc_hold, by_type.sum(axis=0))))
        held_by_type = totals[:n_types * n_slots].reshape(n_types, n_slots)
        holdings = totals[n_types * n_slots:]
        # Wealth at the new pool prices: a few numbers, the same on every rank.
        wealth_by_type = (held_by_type * self.slot_value).sum(axis=1)
        total_wealth = float((holdings * self.slot_value).sum())
        self.s, self.s_new = self.s_new, self.s
        rewired = np.zeros(len(COUNT_LABELS))
        if self.network.enabled and tick % self.network.every == 0:
            with timers("network"):
                # Obligations stay on their edges.
                keep = self.payments.credit.owing_edges().edges
                with small_pages():  # (the columns reallocated below keep numpy's advice)
                    self.edge_strength, counts = self.network.rewire(tick, keep)
                rewired = counts.astype(np.float64)
                self._resize_ghost_columns()
                self.payments.cache_edges()
                self.risk.edges_replaced(self.network.replaced)
        if self.risk.every and tick % self.risk.every == 0:
            with timers("risk"):
                self.risk.sample(self.holdings, self.slot_value)
                credit = self.payments.credit
                # The sample's wealth, summed slot by slot as agent_wealth does; the
                # economy's from the slots' exact totals.
                self.exposure.sample(credit.owing_edges(), self.risk.wealth_prev,
                                     credit.liability() if self.exposure.solver == "petsc"
                                     else None, total_wealth)
        counts = np.maximum(self.type_counts, 1)
        return {
            "pool_price": self.clearing.copy(), "pool_base": pools.base.copy(),
            "pool_quote": pools.quote.copy(), "buy_quote": buy_quote, "sell_base": sell_base,
            "oracle_price": oracle, "holdings": holdings, "gas_burned": burned,
            "orders": n_orders.astype(np.float64),
            "mean_sentiment": float(sums[-1]) / d.n_total,
            "sentiment_by_type": sentiment_by_type / counts,
            "wealth_by_type": wealth_by_type,
            "total_wealth": total_wealth,
            "bridge_sent": sent, "bridge_delivered": delivered,
            "bridge_in_flight": self.bridging.book.in_flight(),
            "bridge_vault": self.bridging.book.vault.reshape(-1).copy(),
            "lp_supply": pools.lp_supply.copy(), "lp_minted": minted_lp,
            "lp_burned": burned_lp, "income_minted": minted, "spending_burned": spent,
            "payments": paid, "payments_in_flight": pay_flight,
            "credit_outstanding": owed, "credit_lent": lent, "credit_repaid": repaid,
            "credit_written_off": written_off, "credit_defaults": float(defaults),
            "portfolio_flow": portfolio_flow,
            "stress_removed": removed,
            "liquidations": liquidations.astype(np.float64), "liquidated": liquidated,
            "liquidation_rounds": float(rounds), "protocol_received": protocol,
            "collateral": collateral, "debt": debt,
            "clusters": self.cluster_counts[0], "largest_cluster": self.cluster_counts[1],
            "cluster_size": self.top_clusters[0].copy(),
            "cluster_sentiment": self.top_clusters[1].copy(),
            "cluster_wealth": self.top_clusters[2].copy(),
            "edge_strength": self.edge_strength, "edges_rewired": rewired,
            "systemic_risk": self.risk.last[0], "mean_connectedness": self.risk.last[1],
            "mean_correlation": self.risk.last[2],
            **self.exposure.last,
        }

    def _apply_shocks(self, tick) -> np.ndarray:
        """The scenario's stress shocks due at ``tick``; returns what they removed per slot
        (the same on every rank). Collective on a tick with a default shock."""
        n_slots = len(self.slots)
        removed = np.zeros(n_slots)
        book = self.bridging.book
        for shock in self.shocks:
            if shock.tick != tick:
                continue
            if shock.kind == "oracle":
                self.oracle_factor[self.assets.index(shock.target)] *= 1.0 - shock.size
            elif shock.kind == "drain":
                i = self.pools.names.index(shock.target)
                for reserve, slot in ((self.pools.base, self.pools.base_slot[i]),
                                      (self.pools.quote, self.pools.quote_slot[i])):
                    taken = reserve[i] * shock.size
                    reserve[i] -= taken
                    removed[slot] += taken
            elif shock.kind == "halt":
                # Every bridge between the two chains, until the latest of its halts ends.
                ends = set(shock.target.split("->"))
                until = tick + shock.duration if shock.duration else math.inf
                for k, br in enumerate(self.market.bridges):
                    if {br.from_chain, br.to_chain} == ends:
                        self._halted_until[k] = max(self._halted_until[k], until)
            elif shock.kind == "default":
                removed += self._write_off(np.asarray(shock.agents, dtype=np.int64))
        book.halted[:] = np.repeat(self._halted_until > tick, 2)
        return removed

    def _write_off(self, gids) -> np.ndarray:
        """Every holding of the owned agents among ``gids`` written off; the totals per
        slot over all ranks (exact). Collective."""
        n_slots = len(self.slots)
        who = np.flatnonzero(np.isin(self.d.gid, gids))
        acc = new_accumulators(n_slots)
        for slot in range(n_slots):
            old = self.holdings[slot, who].copy()
            self.es.accumulate(old, acc[slot])
            self.holdings[slot, who] = 0.0
            record_changes(self.holdings, self._acc_hold, self.kind,
                           np.full(who.shape[0], slot, dtype=np.int64), who, old, self.es)
        return allreduce_exact(self.d.comm, acc)

    def agent_wealth(self, who=slice(None)) -> np.ndarray:
        """Holdings valued at the pool prices of the owned agents ``who`` (all by
        default), slot by slot: the same sum on any rank count. Local."""
        holdings = self.holdings[:, who]
        wealth = np.zeros(holdings.shape[1])
        for slot in range(len(self.slots)):
            wealth += holdings[slot] * self.slot_value[slot]
        return wealth

    def _resize_ghost_columns(self):
        """Sentiment over the new owned + ghost slots (the ghosts are refilled by the
        next halo exchange). Local."""
        n, slots = self.d.n_owned, self.d.n_owned + self.d.halo.n_ghost
        for name in ("s", "s_new"):
            col = np.zeros(slots)
            col[:n] = getattr(self, name)[:n]
            setattr(self, name, col)

    def _top_cluster_aggregates(self, labels, top, sizes):
        """Size, mean sentiment and wealth (at the pool prices) of the largest clusters,
        by exact sums over their members on every rank. Collective."""
        k = top.shape[0]
        member_of = np.full(labels.shape[0], -1, dtype=np.int64)
        for g, label in enumerate(top):  # at most TOP_CLUSTERS passes
            member_of[labels == label] = g
        who = np.flatnonzero(member_of >= 0)
        group = member_of[who]
        wealth = self.agent_wealth(who)
        acc = new_accumulators(2 * TOP_CLUSTERS)
        self.es.accumulate_grouped(self.s_new[who], group, acc)
        self.es.accumulate_grouped(wealth, TOP_CLUSTERS + group, acc)
        sums = allreduce_exact(self.d.comm, acc)
        out = np.full((3, TOP_CLUSTERS), np.nan)
        out[0, :k] = sizes
        out[1, :k] = sums[:k] / sizes
        out[2, :k] = sums[TOP_CLUSTERS:TOP_CLUSTERS + k]
        return out

    def summary(self, records: dict) -> list[str]:
        """Lines of the run summary (rank 0)."""
        out = []
        price = records["pool_price"]
        for i, name in enumerate(self.pools.names):
            out.append(f"  {name:<24} price {price[0, i]:.6g} -> {price[-1, i]:.6g}, "
                       f"{int(records['orders'][:, i].sum()):,} orders")
        gas = records["gas_burned"].sum(axis=0)
        out.append("  gas burned    " + ", ".join(f"{c} {g:.4g}" for c, g in
                                                  zip(self.chain_names, gas, strict=True)))
        out.append(f"  liquidations  {int(records['liquidations'].sum()):,} (deepest cascade "
                   f"{int(records['liquidation_rounds'].max())} rounds); bridges carried "
                   + ", ".join(f"{v:.4g}" for v in records["bridge_sent"].sum(axis=0)))
        out.append(f"  clusters      {int(records['clusters'][-1]):,} (largest "
                   f"{int(records['largest_cluster'][-1]):,} agents) at the last clustering")
        if self.network.enabled:
            formed = records["edges_rewired"].sum(axis=0)
            out.append(f"  network       {int(formed[0] + formed[1]):,} weak edges replaced "
                       f"({int(formed[0]):,} long range, {int(formed[1]):,} friend of friend); "
                       f"mean strength {records['edge_strength'][-1]:.3f} at the last pruning")
        r_sys = records["systemic_risk"]
        if np.isfinite(r_sys).any():
            out.append(f"  systemic risk R_sys {r_sys[np.isfinite(r_sys)][-1]:.4f} at the last "
                       f"sample (mean return correlation of ties "
                       f"{records['mean_correlation'][-1]:.3f})")
        out.append(f"  trade credit  {records['credit_lent'].sum():.4g} lent, "
                   f"{records['credit_repaid'].sum():.4g} repaid, "
                   f"{records['credit_written_off'].sum():.4g} written off "
                   f"({int(records['credit_defaults'].sum()):,} defaults); "
                   f"{records['credit_outstanding'][-1].sum():.4g} owed at the end")
        dr = records["debtrank"]
        if np.isfinite(dr).any():
            last = np.flatnonzero(np.isfinite(dr))[-1]
            out.append(f"  exposure risk DebtRank {dr[last]:.3g} of the stressed set, "
                       f"{int(records['debtrank_distressed'][last]):,} agents distressed; "
                       f"clearing shortfall {records['clearing_shortfall'][last]:.4g} "
                       f"({int(records['clearing_defaults'][last]):,} defaults); expected "
                       f"contagion defaults {records['contagion_expected_defaults'][last]:.3g}"
                       f" (at the last sample)")
        out.append(f"  total wealth  {records['total_wealth'][0]:.6e} -> "
                   f"{records['total_wealth'][-1]:.6e} quote")
        return out


def _append_total(acc: np.ndarray, rows: slice) -> np.ndarray:
    """``acc`` with one more row: the exact sum of ``acc[rows]`` (limb by limb, after
    normalizing those rows so that the limbs cannot overflow)."""
    normalize(acc[rows])
    return np.vstack((acc, acc[rows].sum(axis=0)))
