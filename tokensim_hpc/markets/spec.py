"""The markets of a scenario: chains, AMM pools and bridges, validated.

A scenario describes its markets as arrays of TOML tables::

    [[chains]]
    name = "ethereum"
    tokens = ["ETH", "USDC"]
    gas_fee = 2.0
    block_interval = 1

    [[pools]]
    chain = "ethereum"
    base = "ETH"
    quote = "USDC"
    reserve_base = 50000.0
    reserve_quote = 100000000.0
    fee = 0.003

    [[bridges]]
    from = "ethereum"
    to = "arbitrum"
    token = "USDC"
    rate = 0.999
    delay = 3
    liquidity = 10000000.0

Each entry is checked field by field (``fields.build_section``: key, value,
what is allowed), then across entries: names are unique, a pool's chain and
tokens exist, a bridge joins two existing chains that both hold its token.
A holding slot is one (chain, token) pair; agents, pools and bridge vaults
hold amounts per slot. Local; no MPI.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ScenarioError
from ..fields import build_section, float_range, int_min, positive, setting, toml_tables

_NAME = ((lambda v: v != "" and v.strip() == v), "a non-empty name without surrounding spaces")


@dataclass(frozen=True)
class ChainSpec:
    """[[chains]]: one blockchain, its tokens, gas fee and block interval."""

    name: str = setting("", "chain name, unique", rule=_NAME, required=True)
    tokens: tuple = setting((), "the chain's token symbols, e.g. [\"ETH\", \"USDC\"]", "")
    gas_fee: float = setting(0.0, "fee of one transaction, in units of the chain's quote token",
                             "quote", float_range(0.0, 1e12))
    block_interval: int = setting(1, "ticks between blocks: orders on the chain clear once a "
                                  "block", "tick", int_min(1))


@dataclass(frozen=True)
class PoolSpec:
    """[[pools]]: a constant-product AMM pool (Uniswap v2) on one chain."""

    chain: str = setting("", "chain of the pool", rule=_NAME, required=True)
    base: str = setting("", "base token (priced in quote)", rule=_NAME, required=True)
    quote: str = setting("", "quote token", rule=_NAME, required=True)
    reserve_base: float = setting(0.0, "initial base reserve x", "base", positive(),
                                  required=True)
    reserve_quote: float = setting(0.0, "initial quote reserve y", "quote", positive(),
                                   required=True)
    fee: float = setting(0.003, "swap fee f, kept by the pool", "fraction",
                         ((lambda v: 0 <= v < 1), "a number in [0, 1)"))


@dataclass(frozen=True)
class BridgeSpec:
    """[[bridges]]: moves one token between two chains, both ways."""

    from_chain: str = setting("", "one end of the bridge (TOML key: from)", rule=_NAME,
                              required=True)
    to_chain: str = setting("", "the other end (TOML key: to)", rule=_NAME, required=True)
    token: str = setting("", "token carried; must exist on both chains", rule=_NAME, required=True)
    rate: float = setting(0.999, "conversion rate B_ij, fees included: sending a delivers "
                          "rate * a", "", float_range(0.0, 1.0, lo_open=True))
    delay: int = setting(1, "ticks in flight tau_ij: sent at t, delivered at t + delay", "tick",
                         int_min(1))
    liquidity: float = setting(0.0, "initial vault of the token on each side; a transfer needs "
                               "rate * a of it on the receiving side", "token",
                               float_range(0.0, 1e18))


# TOML keys that differ from the field names ("from" is a Python keyword).
_BRIDGE_KEYS = {"from": "from_chain", "to": "to_chain"}


@dataclass(frozen=True)
class MarketSpec:
    """All chains, pools and bridges of a scenario, cross-checked."""

    chains: tuple[ChainSpec, ...] = ()
    pools: tuple[PoolSpec, ...] = ()
    bridges: tuple[BridgeSpec, ...] = ()

    def slots(self) -> list[tuple[str, str]]:
        """Every (chain, token) holding slot, chains in order, tokens in order."""
        return [(c.name, t) for c in self.chains for t in c.tokens]

    def base_assets(self) -> list[str]:
        """The pools' base tokens, each once, in pool order (one oracle price each)."""
        return list(dict.fromkeys(p.base for p in self.pools))

    def slot_index(self, chain: str, token: str) -> int:
        """Position of (chain, token) in :meth:`slots`."""
        return self.slots().index((chain, token))

    def to_toml(self) -> str:
        """The markets as TOML arrays of tables (every field written)."""
        lines = (toml_tables("chains", self.chains) + toml_tables("pools", self.pools)
                 + toml_tables("bridges", self.bridges,
                               {v: k for k, v in _BRIDGE_KEYS.items()}))
        return "\n".join(lines) + ("\n" if lines else "")


def arbitrage_pairs(market: MarketSpec) -> list[tuple[int, int, float]]:
    """Pairs of pools an arbitrageur can trade against each other: (pool a, pool b, cost).

    Both pools trade the same base for the same quote token. On one chain the
    cost is 0; across chains a bridge for the base or the quote token must
    join them (to move the inventory back), and the cost is its fee, 1 - rate
    (the cheapest such bridge).
    """
    pairs = []
    pools = market.pools
    for a in range(len(pools)):
        for b in range(a + 1, len(pools)):
            pa, pb = pools[a], pools[b]
            if (pa.base, pa.quote) != (pb.base, pb.quote):
                continue
            if pa.chain == pb.chain:
                pairs.append((a, b, 0.0))
                continue
            rates = [br.rate for br in market.bridges
                     if {br.from_chain, br.to_chain} == {pa.chain, pb.chain}
                     and br.token in (pa.base, pa.quote)]
            if rates:
                pairs.append((a, b, 1.0 - max(rates)))
    return pairs


def _entries(data: dict, table: str) -> list:
    entries = data.get(table, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ScenarioError(f"{table} must be an array of tables ([[{table}]] entries), "
                            f"got {entries!r}")
    return entries


def _chain(i: int, entry: dict) -> ChainSpec:
    key = f"chains[{i}]"
    tokens = entry.get("tokens", [])
    if (not isinstance(tokens, list) or not tokens
            or not all(isinstance(t, str) and t and t.strip() == t for t in tokens)):
        raise ScenarioError(f"{key}.tokens = {tokens!r} is not allowed: must be a non-empty "
                            f"list of token symbols, e.g. [\"ETH\", \"USDC\"]")
    if len(set(tokens)) != len(tokens):
        raise ScenarioError(f"{key}.tokens = {tokens!r} is not allowed: a token is listed twice")
    return build_section(key, ChainSpec, {**entry, "tokens": tuple(tokens)})


def _one_of(key: str, value, allowed, what: str):
    if value not in allowed:
        raise ScenarioError(f"{key} = {value!r} is not allowed: must be {what} "
                            f"({', '.join(map(repr, allowed)) or 'none defined'})")


def parse_markets(data: dict) -> MarketSpec:
    """Validate the ``chains``, ``pools`` and ``bridges`` tables of merged TOML data.

    Raises :class:`ScenarioError` naming the entry, the key, the value and
    what is allowed. Local.
    """
    chains = tuple(_chain(i, e) for i, e in enumerate(_entries(data, "chains")))
    names = [c.name for c in chains]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ScenarioError(f"chains[{i}].name = {name!r} is not allowed: chain names must "
                                f"be unique")
    tokens_of = {c.name: c.tokens for c in chains}

    pools = []
    for i, entry in enumerate(_entries(data, "pools")):
        pool = build_section(f"pools[{i}]", PoolSpec, entry)
        _one_of(f"pools[{i}].chain", pool.chain, names, "one of the chains")
        for side in ("base", "quote"):
            _one_of(f"pools[{i}].{side}", getattr(pool, side), tokens_of[pool.chain],
                    f"a token of chain {pool.chain!r}")
        if pool.base == pool.quote:
            raise ScenarioError(f"pools[{i}].quote = {pool.quote!r} is not allowed: must differ "
                                f"from the base token")
        pools.append(pool)

    bridges = []
    for i, entry in enumerate(_entries(data, "bridges")):
        fields = {_BRIDGE_KEYS.get(k, k): v for k, v in entry.items()}
        bad = sorted(k for k in entry if k in _BRIDGE_KEYS.values())
        if bad:
            raise ScenarioError(f"unknown key bridges[{i}].{bad[0]}; write "
                                f"{'from' if bad[0] == 'from_chain' else 'to'} instead")
        try:
            bridge = build_section(f"bridges[{i}]", BridgeSpec, fields)
        except ScenarioError as exc:
            # Report the TOML spelling of the keys, not the field names.
            msg = str(exc).replace(".from_chain", ".from").replace(".to_chain", ".to")
            raise ScenarioError(msg.replace("from_chain, to_chain", "from, to")) from None
        _one_of(f"bridges[{i}].from", bridge.from_chain, names, "one of the chains")
        _one_of(f"bridges[{i}].to", bridge.to_chain, names, "one of the chains")
        if bridge.from_chain == bridge.to_chain:
            raise ScenarioError(f"bridges[{i}].to = {bridge.to_chain!r} is not allowed: must "
                                f"differ from bridges[{i}].from")
        for end in (bridge.from_chain, bridge.to_chain):
            _one_of(f"bridges[{i}].token", bridge.token, tokens_of[end],
                    f"a token of chain {end!r}")
        bridges.append(bridge)
    return MarketSpec(chains=chains, pools=tuple(pools), bridges=tuple(bridges))
