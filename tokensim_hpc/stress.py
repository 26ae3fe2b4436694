"""Stress shocks of a scenario (paper 9.1): the ``[stress]`` table, validated.

A scenario lists its shocks as an array of tables under ``[stress]``::

    [[stress.shocks]]
    name = "eth_crash"       # a name, unique; the group of the stress file
    tick = 240               # the shock happens at the start of this tick
    kind = "oracle"          # oracle | drain | halt | default
    target = "ETH"           # what is shocked (see below)
    size = 0.3               # how hard

Kinds:

- ``oracle``: the external reference price of base token ``target`` falls by
  the fraction ``size`` from ``tick`` on (every later oracle price times
  1 - size), and fundamentalists trade toward it;
- ``drain``: pool ``target`` (its name, ``chain:BASE/QUOTE``) loses the
  fraction ``size`` of both reserves at ``tick`` (an exploit; the tokens
  leave the economy and are recorded in ``/timeseries/stress_removed``);
- ``halt``: every bridge between the two chains ``target = "a->b"`` (either
  order) accepts no transfer in either direction from ``tick`` on, for
  ``duration`` ticks (0: to the end; overlapping halts of a bridge last
  until the latest ends); transfers in flight still arrive;
- ``default``: the agents whose global ids are listed in ``agents`` default
  at ``tick``: every holding they have is written off (recorded in
  ``/timeseries/stress_removed``); their LP shares and a borrower's locked
  collateral and debt stay. Afterwards they act as before with whatever
  they receive (income, payments, deliveries).

A shock to an asset, pool, bridge or agent the scenario does not have is
refused before anything runs, naming the key, the value and what is allowed.
``python -m tokensim_hpc stress SCENARIO`` runs the base case and every shock
(each on its own) and writes their differences side by side. Local; no MPI.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ScenarioError
from .fields import build_section, float_range, int_min, setting, toml_tables

KINDS = ("oracle", "drain", "halt", "default")
_RESERVED = ("base", "difference", "tick")
_NAME = ((lambda v: v != "" and v.strip() == v and "/" not in v),
         "a non-empty name without surrounding spaces or '/'")


@dataclass(frozen=True)
class ShockSpec:
    """[[stress.shocks]]: one shock at one tick."""

    name: str = setting("", "name of the shock, unique (its group in the stress file)",
                        rule=_NAME, required=True)
    tick: int = setting(1, "the shock happens at the start of this tick", "tick", int_min(1),
                        required=True)
    kind: str = setting("oracle", "the kind of shock: oracle, drain, halt or default",
                        rule=((lambda v: v in KINDS), "one of " + ", ".join(map(repr, KINDS))),
                        required=True)
    target: str = setting("", "oracle: a base token; drain: a pool (chain:BASE/QUOTE); halt: "
                          "a bridge (chain_a->chain_b); default: unused")
    size: float = setting(0.0, "oracle: fraction the price falls; drain: fraction of the "
                          "reserves removed", "fraction", float_range(0.0, 1.0))
    duration: int = setting(0, "halt: ticks the bridge stays closed (0: to the end)", "tick",
                            int_min(0))
    agents: tuple = setting((), "default: global ids of the agents that default")


def agent_ids(key: str, value) -> tuple:
    """A TOML list of agent ids as a tuple, or a ScenarioError naming ``key``."""
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool)
                                              for v in value):
        raise ScenarioError(f"{key} = {value!r} is not allowed: must be a list of agent ids "
                            f"(integers)")
    return tuple(value)


def parse_stress(data: dict, markets, n_agents: int, ticks: int) -> tuple:
    """Validate ``data["stress"]`` into a tuple of :class:`ShockSpec`. Local.

    Raises :class:`ScenarioError` naming the entry, the key, the value and what is
    allowed.
    """
    table = data.get("stress", {})
    if not isinstance(table, dict):
        raise ScenarioError(f"[stress] must be a table, got {table!r}")
    unknown = sorted(set(table) - {"shocks"})
    if unknown:
        raise ScenarioError(f"unknown key stress.{unknown[0]} in the scenario; keys allowed in "
                            f"[stress]: shocks (an array of tables, [[stress.shocks]])")
    entries = table.get("shocks", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ScenarioError(f"stress.shocks must be an array of tables ([[stress.shocks]] "
                            f"entries), got {entries!r}")
    assets = markets.base_assets()
    pools = [f"{p.chain}:{p.base}/{p.quote}" for p in markets.pools]
    bridges = [f"{b.from_chain}->{b.to_chain}" for b in markets.bridges]
    shocks = []
    for i, entry in enumerate(entries):
        key = f"stress.shocks[{i}]"
        entry = dict(entry)
        if "agents" in entry:
            entry["agents"] = agent_ids(f"{key}.agents", entry["agents"])
        shock = build_section(key, ShockSpec, entry)
        if shock.name in [s.name for s in shocks] or shock.name in _RESERVED:
            raise ScenarioError(f"{key}.name = {shock.name!r} is not allowed: shock names must "
                                f"be unique and not one of {', '.join(map(repr, _RESERVED))} "
                                f"(names of the stress file's other groups)")
        if shock.tick > ticks:
            raise ScenarioError(f"{key}.tick = {shock.tick} is not allowed: must be at most "
                                f"run.ticks = {ticks}")
        _check_target(key, shock, assets, pools, bridges, n_agents)
        shocks.append(shock)
    return tuple(shocks)


def _check_target(key, shock, assets, pools, bridges, n_agents) -> None:
    def refuse(what, allowed):
        raise ScenarioError(f"{key}.target = {shock.target!r} is not allowed: must be {what} "
                            f"({', '.join(map(repr, allowed)) or 'none defined'})")

    if shock.kind == "oracle" and shock.target not in assets:
        refuse("a base token with an oracle", assets)
    if shock.kind == "drain" and shock.target not in pools:
        refuse("a pool", pools)
    if shock.kind == "halt":
        a, sep, b = shock.target.partition("->")
        if not sep or (f"{a}->{b}" not in bridges and f"{b}->{a}" not in bridges):
            refuse("a bridge 'chain_a->chain_b'", bridges)
    if shock.kind in ("oracle", "drain") and not 0.0 < shock.size < 1.0:
        raise ScenarioError(f"{key}.size = {shock.size!r} is not allowed: must be in (0, 1) "
                            f"for a {shock.kind} shock")
    if shock.kind == "default":
        if not shock.agents:
            raise ScenarioError(f"{key}.agents is missing: a default shock lists the global "
                                f"ids of the agents that default")
        bad = [a for a in shock.agents if not 0 <= a < n_agents]
        if bad:
            raise ScenarioError(f"{key}.agents contains {bad[0]!r}, which is not allowed: "
                                f"agent ids are 0 .. agents.n - 1 = {n_agents - 1}")


def to_toml(shocks) -> str:
    """The shocks as TOML (every field written)."""
    lines = toml_tables("stress.shocks", shocks)
    return "\n".join(lines) + ("\n" if lines else "")
