"""Scenarios: TOML files layered over package defaults, validated up front.

A scenario is resolved in three layers: the defaults declared below, then a
TOML file (a path, or the name of a built-in in ``tokensim_hpc/scenarios``),
then ``--set key=value`` overrides. The result is a frozen :class:`Scenario`.
Anything wrong (unknown key, wrong type, value out of range, TOML syntax) is
refused with a :class:`ScenarioError` that names the key, the value and what
is allowed, before any work starts. Local; no MPI.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import ScenarioError
from .fields import (
    build_section,
    choice,
    finite,
    float_range,
    int_min,
    positive,
    setting,
    spec_field,
    toml_value,
)
from .markets.spec import (
    BridgeSpec,
    ChainSpec,
    MarketSpec,
    PoolSpec,
    arbitrage_pairs,
    parse_markets,
)
from .stress import ShockSpec, agent_ids, parse_stress
from .stress import to_toml as stress_toml

BUILTIN_PACKAGE = "tokensim_hpc.scenarios"


@dataclass(frozen=True)
class RunSection:
    """[run]: what to run and for how long."""

    model: str = setting("b1", "model to simulate: the benchmark B1 or the tokenized economy",
                         rule=choice("b1", "defi"))
    ticks: int = setting(100, "number of ticks to simulate", "tick", int_min(0))
    seed: int = setting(42, "seed of every random draw (positions, network, shocks)", "",
                   ((lambda v: 0 <= v < 2**63), "an integer in [0, 2**63)"))


@dataclass(frozen=True)
class AgentsSection:
    """[agents]: the population."""

    n: int = setting(100_000, "number of agents", "agent", int_min(2))


@dataclass(frozen=True)
class NetworkSection:
    """[network]: the spatial k-NN network plus long-range rewiring."""

    k: int = setting(8, "nearest neighbours per agent (directed edges i -> j)", "edge",
                ((lambda v: 1 <= v <= 64), "an integer in [1, 64]"))
    p: float = setting(0.0, "probability that an edge is rewired to a uniformly random agent "
                  "(small-world long-range links); in network formation, the probability "
                  "that a new edge is long range", "", float_range(0.0, 1.0))
    rewire_every: int = setting(0, "defi: ticks between prunings of the edges weaker than "
                                "network.eta_min, each replaced by a new edge (0: the "
                                "network and its strengths stay fixed)", "tick", int_min(0))
    eta0: float = setting(0.5, "defi: strength eta of every edge at the start and of every "
                          "new edge", "", float_range(0.0, 1.0, lo_open=True))
    eta_min: float = setting(0.1, "defi: edges weaker than this are pruned (< network.eta0)",
                             "", float_range(0.0, 1.0))
    gamma: float = setting(1.0, "defi: growth of an edge's strength per day and unit of "
                           "utility U_ij = 1 - |s_i - s_j|", "1/day", float_range(0.0, 1e6))
    delta: float = setting(0.5, "defi: decay of an edge's strength per day, times "
                           "d^2 / (d^2 + d_ref^2) (d: distance in the economic space; d_ref "
                           "= sqrt(k / (pi N)), the radius holding k agents)", "1/day",
                           float_range(0.0, 1e6))


@dataclass(frozen=True)
class B1Model:
    """[model] for ``run.model = "b1"``: the benchmark model's parameters."""

    sigma: float = setting(0.3, "weight of the N(0,1) sentiment shock xi", "",
                           float_range(0.0, 1e6))
    s0_offset: Any = spec_field("none",
                                "initial sentiment s_i = x_i - s0_offset; 'none': s_i = 0",
                                check=lambda v: v == "none" or (isinstance(v, float)
                                                                and math.isfinite(v)),
                                allowed="a finite number, or 'none'")
    fee: float = setting(0.003, "pool fee f", "fraction",
                         ((lambda v: 0 <= v < 1), "a number in [0, 1)"))
    cash0: float = setting(1000.0, "initial cash per agent", "cash", float_range(0.0, 1e15))
    tokens0: float = setting(10.0, "initial tokens per agent", "token", float_range(0.0, 1e15))
    reserve_per_agent: float = setting(100.0, "pool reserves R_c = R_t = reserve_per_agent * N",
                                  "cash/agent", positive())
    order_fraction: float = setting(0.01, "fraction of cash (buy) or token value (sell) ordered "
                               "per unit of sentiment", "fraction", float_range(0.0, 1.0))
    momentum_scale: float = setting(100.0, "m = clip(momentum_scale * ln(P/P_prev), -1, 1)", "",
                               finite())
    w_self: float = setting(0.5, "weight of own previous sentiment", "", finite())
    w_neighbours: float = setting(1.0, "weight of the neighbours' mean sentiment n_i", "", finite())
    w_momentum: float = setting(0.5, "weight of price momentum m", "", finite())


@dataclass(frozen=True)
class EngineSection:
    """[engine]: how the engine runs the model (never what it computes)."""

    backend: str = setting("cython", "step kernels: compiled Cython or their numpy twins", "",
                      choice("cython", "numpy"))
    halo: str = setting("neighbor", "halo exchange: MPI-3 neighbourhood collective or Isend/Irecv",
                   "", choice("neighbor", "p2p"))
    overlap: bool = setting(True, "overlap the halo exchange with the kernel on interior agents")
    hilbert_bits: int = setting(32, "bits per coordinate of the Hilbert keys", "bit",
                           ((lambda v: 16 <= v <= 32), "an integer in [16, 32]"))
    progress_every: float = setting(2.0, "seconds between progress lines on rank 0", "s",
                               positive())


@dataclass(frozen=True)
class OutputSection:
    """[output]: what goes into the HDF5 file."""

    every: int = setting(10, "ticks between agent snapshots (0: first and last tick only)", "tick",
                    int_min(0))
    snapshots: bool = setting(True, "write agent snapshots")
    network: bool = setting(True, "write the network as a global edge list")


@dataclass(frozen=True)
class ClustersSection:
    """[clusters]: adaptive clustering of the economy's agents (run.model = "defi")."""

    every: int = setting(24, "ticks between clusterings (0: never)", "tick", int_min(0))
    theta: float = setting(0.25, "theta_c: an edge joins two agents' clusters when their "
                           "strategy vectors (sentiment, log order fraction) are closer than "
                           "this", "", float_range(0.0, 1e6))


@dataclass(frozen=True)
class RiskSection:
    """[risk]: systemic-risk measures of the economy (run.model = "defi")."""

    every: int = setting(24, "ticks between samples of the systemic-risk measures (R_sys "
                         "from returns, correlations and connectedness; contagion, DebtRank "
                         "and clearing of the trade-credit network; 0: never)", "tick", int_min(0))
    halflife: float = setting(10.0, "half-life of the exponential weights of the return "
                              "correlations, in samples", "sample", positive())
    solver: str = setting("exact", "how DebtRank and the clearing vector are computed: "
                          "'exact' (bit-identical on any rank count) or 'petsc' (PETSc "
                          "matrices and KSP solves, equal to the solver's tolerance)", "",
                          choice("exact", "petsc"))
    stressed: tuple = setting((), "global ids of the stressed set of the contagion "
                              "probabilities and DebtRank (empty: the risk.stressed_top agents "
                              "with the largest obligations at each sample)", "",
                              (lambda v: all(i >= 0 for i in v), "a list of agent ids >= 0"))
    stressed_top: int = setting(10, "size of the stressed set when risk.stressed is empty",
                                "agent", int_min(1))
    buffer_sd: float = setting(0.25, "uncertainty sigma_i of an agent's loss buffer, as a "
                               "fraction of its assets (contagion probabilities)", "fraction",
                               positive())


SECTIONS: dict[str, type] = {
    "run": RunSection,
    "agents": AgentsSection,
    "network": NetworkSection,
    "engine": EngineSection,
    "output": OutputSection,
    "clusters": ClustersSection,
    "risk": RiskSection,
}
@dataclass(frozen=True)
class DefiModel:
    """[model] for ``run.model = "defi"``: the traders of the tokenized economy."""

    frac_noise: float = setting(0.3, "share of noise traders", "fraction",
                                float_range(0.0, 1.0))
    frac_herding: float = setting(0.4, "share of herding traders", "fraction",
                                  float_range(0.0, 1.0))
    frac_fundamentalist: float = setting(0.3, "share of fundamentalists", "fraction",
                                         float_range(0.0, 1.0))
    frac_liquidity: float = setting(0.0, "share of liquidity providers", "fraction",
                                    float_range(0.0, 1.0))
    frac_payment: float = setting(0.0, "share of payment users", "fraction",
                                  float_range(0.0, 1.0))
    frac_borrower: float = setting(0.0, "share of leveraged borrowers", "fraction",
                                   float_range(0.0, 1.0))
    frac_portfolio: float = setting(0.0, "share of portfolio managers (the eight shares sum "
                                    "to 1)", "fraction", float_range(0.0, 1.0))
    frac_arbitrage: float = setting(0.0, "share of arbitrageurs; "
                                    "each watches one pair of pools of the same tokens on "
                                    "two chains joined by a bridge", "fraction",
                                    float_range(0.0, 1.0))
    quote0: float = setting(1000.0, "initial quote tokens per agent, in its home pool's quote",
                            "quote", float_range(0.0, 1e15))
    base_value0: float = setting(1000.0, "initial base tokens per agent, worth this much quote "
                                 "at the home pool's initial price", "quote",
                                 float_range(0.0, 1e15))
    order_fraction: float = setting(0.05, "median fraction of a holding ordered per unit of "
                                    "signal", "fraction", float_range(0.0, 1.0))
    heterogeneity: float = setting(0.5, "standard deviation of the log of each agent's "
                                   "order fraction and fundamental gain (lognormal, median "
                                   "kept)", "", float_range(0.0, 5.0))
    noise_sigma: float = setting(0.5, "noise traders: signal tanh(noise_sigma * xi)", "",
                                 float_range(0.0, 1e6))
    sigma: float = setting(0.3, "weight of the N(0,1) shock in herding and fundamental "
                           "signals", "", float_range(0.0, 1e6))
    w_self: float = setting(0.5, "herding: weight of own previous sentiment", "", finite())
    w_neighbours: float = setting(1.0, "herding: weight of the neighbours' mean sentiment", "",
                                  finite())
    w_momentum: float = setting(0.5, "herding: weight of the home pool's momentum", "",
                                finite())
    momentum_scale: float = setting(100.0, "momentum = clip(momentum_scale * ln(P/P_prev), "
                                    "-1, 1)", "", finite())
    fundamental_gain: float = setting(20.0, "fundamentalists: median kappa in "
                                      "tanh(kappa ln(oracle/P))", "", float_range(0.0, 1e6))
    rebalance_ratio: float = setting(2.0, "arbitrageurs send half the difference of their "
                                     "bridge token across when one side holds more than this "
                                     "many times the other", "", float_range(1.0, 1e12))
    lp_fraction: float = setting(0.1, "liquidity providers deposit this fraction of their "
                                 "holdings, or withdraw this fraction of their shares, at "
                                 "a time", "fraction", float_range(0.0, 1.0))
    lp_calm: float = setting(0.1, "liquidity providers deposit when the pool's |momentum| is "
                             "at most this", "", float_range(0.0, 1.0))
    lp_stress: float = setting(0.5, "liquidity providers withdraw when the pool's |momentum| "
                               "is at least this (> lp_calm)", "", float_range(0.0, 1.0))
    pay_income: float = setting(1.0, "payment users: income per tick, minted in their home "
                                "chain's quote token", "quote", float_range(0.0, 1e12))
    pay_spend: float = setting(0.01, "payment users: fraction of their quote spent per tick "
                               "(burned)", "fraction", float_range(0.0, 1.0))
    pay_probability: float = setting(0.05, "payment users: probability of paying a network "
                                     "neighbour in a tick", "", float_range(0.0, 1.0))
    pay_fraction: float = setting(0.05, "payment users: fraction of their quote paid",
                                  "fraction", float_range(0.0, 1.0))
    credit_share: float = setting(0.5, "payment users: share of their purchases from network "
                                  "neighbours made on credit (an obligation to the seller "
                                  "instead of a payment)", "fraction", float_range(0.0, 1.0))
    credit_term: int = setting(24, "payment users settle everything they owe every this many "
                               "ticks, each on its own tick (tick + id divisible by it)",
                               "tick", int_min(1))
    message_threshold: float = setting(0.9, "messages with a priority (uniform in [0, 1)) "
                                       "above this settle within the tick", "",
                                       float_range(0.0, 1.0))
    message_delay: int = setting(2, "other messages arrive this many ticks later (tau)",
                                 "tick", int_min(1))
    leverage: float = setting(0.6, "borrowers: debt at the start over the value of their "
                              "collateral (their base tokens)", "", float_range(0.0, 10.0))
    liquidation_threshold: float = setting(0.8, "borrowers are liquidated when collateral "
                                           "value * this < debt", "", float_range(0.0, 1.0,
                                                                                  lo_open=True))
    liquidation_penalty: float = setting(0.05, "bonus on top of the repaid debt that a "
                                         "liquidation pays the protocol", "fraction",
                                         float_range(0.0, 1.0))
    close_factor: float = setting(0.5, "fraction of the debt a liquidation repays at most",
                                  "fraction", float_range(0.0, 1.0, lo_open=True))
    min_order: float = setting(1.0, "smallest order placed, in quote", "quote",
                               float_range(0.0, 1e15))
    min_order_gas: float = setting(5.0, "an order must also be worth this many times its "
                                   "chain's gas fee", "", float_range(0.0, 1e6))
    portfolio_drift: float = setting(0.0, "portfolio managers: drift nu of each holding "
                                     "between trades (net deposits, minted), per day",
                                     "1/day", float_range(-10.0, 10.0))
    portfolio_vol: float = setting(0.05, "portfolio managers: volatility sigma of each "
                                   "holding between trades (deposits and withdrawals), per "
                                   "sqrt(day)", "1/sqrt(day)", float_range(0.0, 10.0))
    portfolio_target: float = setting(0.5, "portfolio managers: median target weight of the "
                                      "base token in the portfolio's value (logit-normal, "
                                      "spread heterogeneity)", "fraction",
                                      float_range(0.0, 1.0, lo_open=True, hi_open=True))
    portfolio_risk_aversion: float = setting(1.0, "portfolio managers: median lambda of the "
                                             "tracking loss (lambda/2) W (w - w*)^2 "
                                             "(lognormal); the no-trade band is "
                                             "+-(fee + portfolio_cost) / lambda", "",
                                             positive())
    portfolio_cost: float = setting(0.01, "portfolio managers: proportional trading cost "
                                    "on top of the pool fee (slippage), per quote traded",
                                    "fraction", float_range(0.0, 1.0))
    oracle_mu: float = setting(0.0, "drift of the oracle GBM per day", "1/day", finite())
    oracle_sigma: float = setting(0.05, "volatility of the oracle GBM per sqrt(day)",
                                  "1/sqrt(day)", float_range(0.0, 10.0))
    ticks_per_day: int = setting(24, "ticks in a simulated day", "tick", int_min(1))
    oracle_file: str = setting("", "file of reference prices instead of the GBM, row t the "
                               "price at tick t from tick 0: a CSV with a header naming base "
                               "tokens, or HDF5 (FILE.h5 or FILE.h5:/group/dataset, default "
                               "/prices): a 2-D dataset (ticks, columns) whose attribute "
                               "'columns' (or 'labels') names the base tokens, or a group of "
                               "1-D datasets named by base token (relative paths: from the "
                               "working directory); '' = GBM")
    oracle_kalman_q: float = setting(0.0, "process variance q of the Kalman filter smoothing "
                                     "the file's prices (0: no filter)", "quote^2",
                                     float_range(0.0, 1e30))
    oracle_kalman_r: float = setting(1.0, "observation variance r of that filter", "quote^2",
                                     positive())

    def type_shares(self) -> tuple[float, ...]:
        """The shares of the agent types, in the order of their type codes."""
        return (self.frac_noise, self.frac_herding, self.frac_fundamentalist,
                self.frac_arbitrage, self.frac_liquidity, self.frac_payment, self.frac_borrower,
                self.frac_portfolio)


MODELS: dict[str, type] = {"b1": B1Model, "defi": DefiModel}
MARKET_TABLES = ("chains", "pools", "bridges")


@dataclass(frozen=True)
class Scenario:
    """A resolved, validated scenario."""

    name: str
    run: RunSection
    agents: AgentsSection
    network: NetworkSection
    model: Any
    engine: EngineSection
    output: OutputSection
    clusters: ClustersSection = ClustersSection()
    risk: RiskSection = RiskSection()
    markets: MarketSpec = MarketSpec()
    stress: tuple = ()  # ShockSpec entries of [[stress.shocks]]

    def to_toml(self) -> str:
        """The resolved scenario, every default included, as TOML text."""
        lines = [f"# scenario: {self.name}"]
        for section in ("run", "agents", "network", "model", "engine", "output", "clusters",
                        "risk"):
            lines.append(f"\n[{section}]")
            obj = getattr(self, section)
            for f in dataclasses.fields(obj):
                lines.append(f"{f.name} = {toml_value(getattr(obj, f.name))}")
        return "\n".join(lines) + "\n" + self.markets.to_toml() + stress_toml(self.stress)

    def with_overrides(self, **section_values) -> Scenario:
        """A copy with some fields replaced, e.g. ``with_overrides(run={"ticks": 5})``."""
        data = tomllib.loads(self.to_toml())
        for section, values in section_values.items():
            data.setdefault(section, {}).update(values)
        return build_scenario(data, self.name)


def builtin_names() -> list[str]:
    """Names of the built-in scenarios."""
    files = resources.files(BUILTIN_PACKAGE).iterdir()
    return sorted(p.name[:-5] for p in files if p.name.endswith(".toml"))


def builtin_description(name: str) -> str:
    """First comment line of a built-in scenario file."""
    text = resources.files(BUILTIN_PACKAGE).joinpath(f"{name}.toml").read_text()
    first = text.splitlines()[0] if text else ""
    return first.lstrip("# ").strip()


def _parse_toml(text: str, origin: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message carries "(at line L, column C)".
        raise ScenarioError(f"{origin}: TOML syntax error: {exc}") from None


def load_layers(source: str) -> tuple[str, dict]:
    """The TOML data of a scenario file or built-in name, and the scenario's name."""
    path = Path(source)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ScenarioError(f"scenario file {source!r} does not exist "
                                f"(built-in scenarios: {', '.join(builtin_names())})")
        return path.stem, _parse_toml(path.read_text(), str(path))
    if source in builtin_names():
        text = resources.files(BUILTIN_PACKAGE).joinpath(f"{source}.toml").read_text()
        return source, _parse_toml(text, f"built-in scenario {source!r}")
    raise ScenarioError(f"unknown scenario {source!r}: not a file, and not a built-in "
                        f"scenario (built-in: {', '.join(builtin_names())})")


def parse_set(assignments: list[str]) -> dict:
    """``["network.k=6", "engine.backend=numpy"]`` -> nested dict of TOML values."""
    data: dict = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or "." not in key:
            raise ScenarioError(f"--set {item!r}: expected SECTION.KEY=VALUE, "
                                f"e.g. --set agents.n=1000")
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()  # a bare word such as numpy is taken as a string
        section, _, name = key.partition(".")
        data.setdefault(section, {})[name] = value
    return data


def _merge(base: dict, over: dict) -> dict:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k].update(v)
        else:
            out[k] = v
    return out


def build_scenario(data: dict, name: str) -> Scenario:
    """Validate merged TOML data into a :class:`Scenario`."""
    allowed = set(SECTIONS) | {"model", "stress"} | set(MARKET_TABLES)
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ScenarioError(f"unknown section [{unknown[0]}] in the scenario; allowed sections: "
                            f"{', '.join(sorted(allowed))}")
    risk = data.get("risk")
    if isinstance(risk, dict) and "stressed" in risk:
        data = {**data, "risk": {**risk, "stressed": agent_ids("risk.stressed",
                                                               risk["stressed"])}}
    sections = {s: build_section(s, cls, data.get(s, {})) for s, cls in SECTIONS.items()}
    model_cls = MODELS[sections["run"].model]
    sections["model"] = build_section("model", model_cls, data.get("model", {}))
    model = sections["run"].model
    if model == "defi":
        sections["markets"] = parse_markets(data)
        _check_defi(sections["model"], sections["markets"])
        sections["stress"] = parse_stress(data, sections["markets"], sections["agents"].n,
                                          sections["run"].ticks)
    elif any(t in data for t in MARKET_TABLES + ("stress",)):
        table = next(t for t in MARKET_TABLES + ("stress",) if t in data)
        if table == "stress":
            raise ScenarioError(f"[stress] is not allowed with run.model = {model!r}: stress "
                                f"shocks belong to run.model = 'defi'")
        raise ScenarioError(f"[[{table}]] is not allowed with run.model = {model!r}: market "
                            f"tables belong to run.model = 'defi'")
    scenario = Scenario(name=name, **sections)
    net = scenario.network
    if net.rewire_every > 0 and model != "defi":
        raise ScenarioError(f"network.rewire_every = {net.rewire_every} is not allowed with "
                            f"run.model = {model!r}: network formation belongs to "
                            f"run.model = 'defi' (use 0)")
    if net.eta_min >= net.eta0:
        raise ScenarioError(f"network.eta_min = {net.eta_min!r} is not allowed: must be "
                            f"smaller than network.eta0 = {net.eta0!r}")
    stressed = scenario.risk.stressed
    if len(set(stressed)) < len(stressed):
        twice = next(i for i in stressed if stressed.count(i) > 1)
        raise ScenarioError(f"risk.stressed lists agent {twice} twice, which is not allowed: "
                            f"each stressed agent once")
    bad = [i for i in stressed if i >= scenario.agents.n]
    if bad:
        raise ScenarioError(f"risk.stressed contains {bad[0]!r}, which is not allowed: agent "
                            f"ids are 0 .. agents.n - 1 = {scenario.agents.n - 1}")
    if scenario.network.k >= scenario.agents.n:
        raise ScenarioError(f"network.k = {scenario.network.k} is not allowed with agents.n = "
                            f"{scenario.agents.n}: must be smaller than agents.n")
    return scenario


def _check_defi(model, markets) -> None:
    shares = sum(model.type_shares())
    if abs(shares - 1.0) > 1e-9:
        raise ScenarioError(f"model.frac_noise + model.frac_herding + model.frac_fundamentalist "
                            f"+ model.frac_arbitrage + model.frac_liquidity + "
                            f"model.frac_payment + model.frac_borrower + model.frac_portfolio "
                            f"= {shares!r} is not "
                            f"allowed: the shares must sum to 1")
    if model.lp_stress <= model.lp_calm:
        raise ScenarioError(f"model.lp_stress = {model.lp_stress!r} is not allowed: must be "
                            f"greater than model.lp_calm = {model.lp_calm!r}")
    if not markets.chains or not markets.pools:
        raise ScenarioError("run.model = 'defi' needs at least one [[chains]] entry and one "
                            "[[pools]] entry")
    if model.frac_arbitrage > 0 and not arbitrage_pairs(markets):
        raise ScenarioError(f"model.frac_arbitrage = {model.frac_arbitrage!r} is not allowed "
                            f"here: no two pools trade the same tokens on one chain or on two "
                            f"chains joined by a bridge for one of those tokens")


def resolve(source: str, assignments: list[str] | None = None) -> Scenario:
    """Resolve a scenario: defaults, then the file or built-in, then ``--set``. Local."""
    name, data = load_layers(source)
    data = _merge(data, parse_set(assignments or []))
    return build_scenario(data, name)


def _kind_name(default) -> str:
    return "a list" if isinstance(default, tuple) else type(default).__name__


def describe_keys() -> list[tuple[str, str, str, str, str]]:
    """(key, default, unit, allowed, description) for every scenario key, for docs and --help.

    [model] keys are listed once per model (the description says which);
    market tables as ``chains[].name`` and so on.
    """
    rows = []

    def add(key, f, note=""):
        rows.append((key, toml_value(f.default) if not f.metadata.get("required") else "-",
                     f.metadata.get("unit", ""),
                     f.metadata.get("allowed", "") or _kind_name(f.default),
                     note + f.metadata.get("doc", "")))

    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            add(f"{section}.{f.name}", f)
    for model, cls in MODELS.items():
        for f in dataclasses.fields(cls):
            add(f"model.{f.name}", f, f"({model}) ")
    for table, cls in (("chains", ChainSpec), ("pools", PoolSpec), ("bridges", BridgeSpec)):
        for f in dataclasses.fields(cls):
            name = {"from_chain": "from", "to_chain": "to"}.get(f.name, f.name)
            add(f"{table}[].{name}", f, "(defi) ")
    for f in dataclasses.fields(ShockSpec):
        add(f"stress.shocks[].{f.name}", f, "(defi) ")
    return rows
