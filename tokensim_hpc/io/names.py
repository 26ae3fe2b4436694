"""Dataset paths, units and descriptions of a run file, in one place.

The README's table of datasets is this module in prose; a test checks that
every dataset a run writes carries ``units`` and ``description`` attributes.
"""

FORMAT_VERSION = 1

# path -> (units, description)
TIMESERIES = {
    "timeseries/tick": ("tick", "tick number of each record (1..ticks); dimension scale"),
    "timeseries/price": ("cash/token", "pool price P = R_c / R_t after the tick's clearing"),
    "timeseries/net_flow": ("cash", "net order flow Q = sum_i q_i through the pool"),
    "timeseries/mean_sentiment": ("1", "mean sentiment over all agents, in [-1, 1]"),
    "timeseries/total_wealth": ("cash", "sum_i (c_i + h_i P) after the fills"),
}
AGENTS = {
    "agents/gid": ("1", "global id of each agent, in global Hilbert order"),
    "agents/x": ("1", "x coordinate of the agent in the economic space (unit square)"),
    "agents/y": ("1", "y coordinate of the agent in the economic space (unit square)"),
}
SNAPSHOTS = {
    "snapshots/tick": ("tick", "tick of each snapshot (0 = initial state); dimension scale"),
    "snapshots/sentiment": ("1", "sentiment s_i per snapshot and agent (agents/gid order)"),
    "snapshots/cash": ("cash", "cash c_i per snapshot and agent (agents/gid order)"),
    "snapshots/tokens": ("token", "tokens h_i per snapshot and agent (agents/gid order)"),
}
NETWORK = {
    "network/source": ("1", "global id of each edge's source agent (rows in Hilbert order)"),
    "network/target": ("1", "global id of each edge's target agent"),
    "network/weight": ("1", "edge weight w_ij"),
}
ALL = {**TIMESERIES, **AGENTS, **SNAPSHOTS, **NETWORK}

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
