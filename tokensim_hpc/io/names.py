"""Dataset paths, units and descriptions of a run file, in one place.

The README's table of datasets is this module in prose; a test checks that
every dataset a run writes carries ``units`` and ``description`` attributes.
Each entry is ``path -> (units, description, axis)``: ``axis`` is None for
one value per tick (time series) or per agent (snapshots), or the name of a
second axis ("pools", "slots", "chains", "types", "directions",
"top_clusters", "formation") whose labels the model gives; such datasets have shape
(ticks, n_axis) or (S, n_axis, N) and a ``labels`` attribute naming the
entries along that axis.
"""

FORMAT_VERSION = 2

TICK = {
    "timeseries/tick": ("tick", "tick number of each record (1..ticks); dimension scale", None),
}
AGENTS = {
    "agents/gid": ("1", "global id of each agent, in global Hilbert order", None),
    "agents/x": ("1", "x coordinate of the agent in the economic space (unit square)", None),
    "agents/y": ("1", "y coordinate of the agent in the economic space (unit square)", None),
}
SNAPSHOT_TICK = {
    "snapshots/tick": ("tick", "tick of each snapshot (0 = initial state); dimension scale",
                       None),
}
NETWORK = {
    "network/source": ("1", "global id of each edge's source agent (rows in Hilbert order)",
                       None),
    "network/target": ("1", "global id of each edge's target agent", None),
    "network/weight": ("1", "edge weight w_ij", None),
}

B1_TIMESERIES = {
    "timeseries/price": ("cash/token", "pool price P = R_c / R_t after the tick's clearing", None),
    "timeseries/net_flow": ("cash", "net order flow Q = sum_i q_i through the pool", None),
    "timeseries/mean_sentiment": ("1", "mean sentiment over all agents, in [-1, 1]", None),
    "timeseries/total_wealth": ("cash", "sum_i (c_i + h_i P) after the fills", None),
}
B1_SNAPSHOTS = {
    "snapshots/sentiment": ("1", "sentiment s_i per snapshot and agent (agents/gid order)", None),
    "snapshots/cash": ("cash", "cash c_i per snapshot and agent (agents/gid order)", None),
    "snapshots/tokens": ("token", "tokens h_i per snapshot and agent (agents/gid order)", None),
}

DEFI_TIMESERIES = {
    "timeseries/pool_price": ("quote/base", "clearing price of each pool's batch (quote per "
                              "base); the pool price y/x when it had no orders", "pools"),
    "timeseries/pool_base": ("base", "base reserve x of each pool after the tick", "pools"),
    "timeseries/pool_quote": ("quote", "quote reserve y of each pool after the tick", "pools"),
    "timeseries/buy_quote": ("quote", "quote offered by the tick's buy orders, per pool (Q)",
                             "pools"),
    "timeseries/sell_base": ("base", "base offered by the tick's sell orders, per pool (B)",
                             "pools"),
    "timeseries/oracle_price": ("quote/base", "external reference price of each pool's base "
                                "token", "pools"),
    "timeseries/holdings": ("token", "sum over agents of each (chain, token) holding slot",
                            "slots"),
    "timeseries/gas_burned": ("quote", "gas paid on each chain in the tick (burned), in the "
                              "chain's gas token", "chains"),
    "timeseries/orders": ("1", "orders placed in the tick, per pool", "pools"),
    "timeseries/mean_sentiment": ("1", "mean sentiment over all agents, in [-1, 1]", None),
    "timeseries/sentiment_by_type": ("1", "mean sentiment per agent type", "types"),
    "timeseries/wealth_by_type": ("quote", "sum of agents' holdings valued at the pool prices "
                                  "(quote tokens at 1), per agent type", "types"),
    "timeseries/total_wealth": ("quote", "sum of every agent's holdings valued at the pool "
                                "prices", None),
    "timeseries/bridge_sent": ("token", "amount accepted by each bridge direction in the tick, "
                               "in the token sent", "directions"),
    "timeseries/bridge_delivered": ("token", "amount delivered by each bridge direction at the "
                                    "start of the tick (rate times what was sent delay ticks "
                                    "before)", "directions"),
    "timeseries/bridge_in_flight": ("token", "amount in flight per bridge direction after the "
                                    "tick, in the token received", "directions"),
    "timeseries/bridge_vault": ("token", "each bridge's vault on the sending side of the "
                                "direction, after the tick", "directions"),
    "timeseries/lp_supply": ("share", "liquidity shares of each pool after the tick (the "
                             "initial sqrt(x y) belongs to no agent)", "pools"),
    "timeseries/lp_minted": ("share", "shares minted to liquidity providers in the tick",
                             "pools"),
    "timeseries/lp_burned": ("share", "shares burned by liquidity providers in the tick",
                             "pools"),
    "timeseries/income_minted": ("token", "payment users' income in the tick (minted), per "
                                 "slot", "slots"),
    "timeseries/spending_burned": ("token", "payment users' spending in the tick (burned), "
                                   "per slot", "slots"),
    "timeseries/payments": ("token", "payments sent to network neighbours in the tick, per "
                            "slot", "slots"),
    "timeseries/payments_in_flight": ("token", "payments sent and not yet delivered after the "
                                      "tick, per slot", "slots"),
    "timeseries/portfolio_flow": ("token", "portfolio managers' net deposits in the tick "
                                  "(the SDE between trades; minted if positive, burned if "
                                  "negative), per slot", "slots"),
    "timeseries/stress_removed": ("token", "tokens removed by the tick's stress shocks (a "
                                  "drained pool's reserves, defaulted agents' holdings), per "
                                  "slot", "slots"),
    "timeseries/liquidations": ("1", "borrowers liquidated in the tick (all rounds), per pool",
                                "pools"),
    "timeseries/liquidated": ("base", "collateral sold by liquidations in the tick, per pool",
                              "pools"),
    "timeseries/liquidation_rounds": ("1", "settlement rounds of liquidation messages in the "
                                      "tick (the depth of the cascade)", None),
    "timeseries/protocol_received": ("token", "repayments and penalties the lending protocols "
                                     "received in the tick, per slot", "slots"),
    "timeseries/collateral": ("token", "borrowers' locked collateral after the tick, per slot",
                              "slots"),
    "timeseries/debt": ("token", "borrowers' debt after the tick, per slot", "slots"),
    "timeseries/clusters": ("1", "number of clusters at the last clustering (clusters.every)",
                            None),
    "timeseries/largest_cluster": ("agent", "agents in the largest cluster at the last "
                                   "clustering", None),
    "timeseries/cluster_size": ("agent", "agents in each of the largest clusters at the last "
                                "clustering, the largest first (NaN: fewer clusters)",
                                "top_clusters"),
    "timeseries/cluster_sentiment": ("1", "mean sentiment in each of those clusters at the "
                                     "last clustering", "top_clusters"),
    "timeseries/cluster_wealth": ("quote", "holdings of each of those clusters' agents "
                                  "valued at the pool prices, at the last clustering",
                                  "top_clusters"),
    "timeseries/edge_strength": ("1", "mean strength eta over all network edges at the last "
                                 "pruning, before it (every network.rewire_every ticks; "
                                 "network.eta0 before the first)", None),
    "timeseries/edges_rewired": ("edge", "weak edges replaced in the tick by long-range and "
                                 "friend-of-friend edges, and weak edges kept for want of a "
                                 "new target (every network.rewire_every ticks)", "formation"),
    "timeseries/systemic_risk": ("1", "R_sys = 1 - sum_ij w_ij (d_i - dbar)^2 / sum_i d_i^2 "
                                 "(paper 6.1; w: return correlations of connected agents, d: "
                                 "ties in and out) at the last sample (risk.every); NaN "
                                 "before the second", None),
    "timeseries/mean_connectedness": ("edge", "mean number of ties (in and out) per agent, "
                                      "dbar, at the last risk sample", None),
    "timeseries/mean_correlation": ("1", "mean return correlation w_ij over the network's "
                                    "edges at the last risk sample", None),
    "timeseries/credit_outstanding": ("token", "trade credit: what payment users owe their "
                                      "network neighbours after the tick, per slot (the "
                                      "debtor's home quote token)", "slots"),
    "timeseries/credit_lent": ("token", "trade credit: purchases made on credit in the tick "
                               "(new obligations), per slot", "slots"),
    "timeseries/credit_repaid": ("token", "trade credit: repayments sent in the tick (they "
                                 "land at t + model.message_delay), per slot", "slots"),
    "timeseries/credit_written_off": ("token", "trade credit: obligations written off by "
                                      "defaulting debtors in the tick (the creditors' "
                                      "losses), per slot", "slots"),
    "timeseries/credit_defaults": ("agent", "debtors that could not settle in full in the "
                                   "tick (each sent default notices to its creditors)", None),
    "timeseries/debtrank": ("fraction", "DebtRank R of the stressed set (risk.stressed, or "
                            "the risk.stressed_top largest debtors) on "
                            "the exposure network: share of the economy's value lost through "
                            "the network, the initial shock excluded, at the last risk sample "
                            "(risk.every); NaN before the first", None),
    "timeseries/debtrank_distressed": ("agent", "agents with distress h > 0 at the end of "
                                       "that DebtRank cascade, the stressed ones included",
                                       None),
    "timeseries/contagion_expected_defaults": ("agent", "sum of P(Default_i | the stressed "
                                               "set) = 1 - Phi((theta_i - c_i,S) / sigma_i) "
                                               "over the agents outside the set exposed to "
                                               "it (c_i,S > 0), at the last risk sample",
                                               None),
    "timeseries/contagion_max_probability": ("1", "largest of those probabilities, at the "
                                             "last risk sample", None),
    "timeseries/clearing_shortfall": ("token", "Eisenberg-Noe clearing of the obligations "
                                      "with the agents' wealth as external assets: sum_i "
                                      "(pbar_i - p_i), at the last risk sample", None),
    "timeseries/clearing_defaults": ("agent", "agents paying less than they owe in that "
                                     "clearing vector (p_i < pbar_i)", None),
}
DEFI_SNAPSHOTS = {
    "snapshots/sentiment": ("1", "sentiment s_i per snapshot and agent (agents/gid order)", None),
    "snapshots/holdings": ("token", "holding of each (chain, token) slot per snapshot and agent",
                           "slots"),
    "snapshots/lp_shares": ("share", "liquidity shares of the agent's home pool per snapshot "
                            "and agent", None),
    "snapshots/collateral": ("base", "collateral a borrower has locked (its home pool's base "
                             "token), per snapshot and agent", None),
    "snapshots/debt": ("quote", "debt of a borrower (its home pool's quote token), per "
                       "snapshot and agent", None),
    "snapshots/wealth": ("quote", "holdings of each agent valued at the pool prices after the "
                         "tick (quote tokens at 1)", None),
    "snapshots/cluster": ("1", "cluster of each agent at the last clustering before the "
                          "snapshot: the smallest agent id in the cluster (its own id before "
                          "the first), for aggregates over any cluster", None),
    "snapshots/in_strength": ("1", "tie in-strength of each agent per snapshot: the sum of "
                              "the strengths eta of the edges pointing at it", None),
    "snapshots/central_id": ("1", "per snapshot, the ids of the 20 agents of largest tie "
                             "in-strength, the largest first (ties: smaller id)", None),
    "snapshots/central_strength": ("1", "their tie in-strengths (same order)", None),
    "snapshots/claims": ("quote", "trade credit each agent is owed (in-strength of the "
                         "exposure network), per snapshot", None),
    "snapshots/obligations": ("quote", "trade credit each agent owes (pbar_i), per snapshot",
                              None),
    "snapshots/credit_loss": ("quote", "each creditor's losses from default notices since "
                              "the start, per snapshot", None),
    "snapshots/edge_owed": ("quote", "what each edge's source owes its target per snapshot "
                            "(same order as snapshots/edge_target; 0 without an "
                            "obligation)", None),
    "snapshots/systemic_id": ("1", "per snapshot, the ids of the 20 most systemic agents: "
                              "largest one-step DebtRank impact, the largest first (ties: "
                              "smaller id)", None),
    "snapshots/systemic_impact": ("fraction", "their impacts I_i = sum_j min(1, L_ij / E_j) "
                                  "v_j / sum v: the share of the economy's value their "
                                  "default destroys directly (same order)", None),
    "snapshots/edge_target": ("1", "global id of each edge's target per snapshot (E edges in "
                              "the order of network/source: k per agent, rows in Hilbert "
                              "order)", None),
    "snapshots/edge_strength": ("1", "strength eta of each edge per snapshot (same order as "
                                "snapshots/edge_target)", None),
}
DEFI_AGENTS = {
    "agents/type": ("1", "agent type code (labels attribute: the type names)", None),
    "agents/pool": ("1", "index of the agent's home pool (labels attribute: the pool names)",
                    None),
    "agents/target_weight": ("fraction", "portfolio managers' target weight w* of the base "
                             "token in their portfolio's value (drawn for every agent)", None),
    "agents/risk_aversion": ("1", "portfolio managers' risk aversion lambda (drawn for every "
                             "agent); their no-trade band is +-(fee + model.portfolio_cost) / "
                             "lambda", None),
}

# Snapshot datasets whose last axis is not the agents: "edges", the network's E edges in
# the order of network/source (each rank writes its rows' edges), or the name of an axis
# whose labels the model gives, for a few values that are the same on every rank.
SNAPSHOT_EXTENT = {
    "snapshots/edge_target": "edges",
    "snapshots/edge_strength": "edges",
    "snapshots/edge_owed": "edges",
    "snapshots/systemic_id": "central",
    "snapshots/systemic_impact": "central",
    "snapshots/central_id": "central",
    "snapshots/central_strength": "central",
}

MODELS = {
    "b1": {**TICK, **B1_TIMESERIES, **AGENTS, **SNAPSHOT_TICK, **B1_SNAPSHOTS, **NETWORK},
    "defi": {**TICK, **DEFI_TIMESERIES, **AGENTS, **DEFI_AGENTS, **SNAPSHOT_TICK,
             **DEFI_SNAPSHOTS, **NETWORK},
}

# Every path of every model, for the README check.
ALL = {path: entry for catalogue in MODELS.values() for path, entry in catalogue.items()}


def catalogue(model: str) -> dict:
    """``path -> (units, description, axis)`` of every dataset a ``model`` run writes."""
    return MODELS[model]


# Root attributes: name -> description.
ROOT_ATTRS = {
    "format_version": "version of this file layout",
    "tokensim_version": "version of TokenSim-HPC that wrote the file",
    "scenario": "the resolved scenario, every default included, as TOML text",
    "scenario_name": "name of the scenario (built-in name or file stem)",
    "model": "model simulated",
    "seed": "run.seed",
    "n_agents": "number of agents",
    "ticks": "number of ticks simulated",
    "ranks": "number of MPI ranks that wrote the file (results do not depend on it)",
    "git_revision": "source revision, when run from a git checkout",
    "created": "UTC time the run started",
    "complete": "true once every dataset has been written and the file closed",
    "init_seconds": "wall-clock initialisation time (rank-count dependent)",
    "run_seconds": "wall-clock time of the ticks (rank-count dependent)",
}
