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
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import ScenarioError

BUILTIN_PACKAGE = "tokensim_hpc.scenarios"


def _spec(default, doc, *, unit="", check=None, allowed=""):
    """A scenario field: default, one-line doc, unit, range check and its wording."""
    return field(default=default, metadata={"doc": doc, "unit": unit, "check": check,
                                            "allowed": allowed})


def _int_min(lo):
    return (lambda v: v >= lo), f"an integer >= {lo}"


def _float_range(lo, hi, lo_open=False):
    def check(v):
        return (v > lo if lo_open else v >= lo) and v <= hi and math.isfinite(v)
    return check, f"a number in {'(' if lo_open else '['}{lo}, {hi}]"


def _finite():
    return math.isfinite, "a finite number"


def _positive():
    return (lambda v: math.isfinite(v) and v > 0), "a finite number > 0"


def _choice(*options):
    return (lambda v: v in options), "one of " + ", ".join(repr(o) for o in options)


def _f(default, doc, unit="", rule=None):
    check, allowed = rule if rule else (None, "")
    return _spec(default, doc, unit=unit, check=check, allowed=allowed)


@dataclass(frozen=True)
class RunSection:
    """[run]: what to run and for how long."""

    model: str = _f("b1", "model to simulate", rule=_choice("b1"))
    ticks: int = _f(100, "number of ticks to simulate", "tick", _int_min(0))
    seed: int = _f(42, "seed of every random draw (positions, network, shocks)", "",
                   ((lambda v: 0 <= v < 2**63), "an integer in [0, 2**63)"))


@dataclass(frozen=True)
class AgentsSection:
    """[agents]: the population."""

    n: int = _f(100_000, "number of agents", "agent", _int_min(2))


@dataclass(frozen=True)
class NetworkSection:
    """[network]: the spatial k-NN network plus long-range rewiring."""

    k: int = _f(8, "nearest neighbours per agent (directed edges i -> j)", "edge",
                ((lambda v: 1 <= v <= 64), "an integer in [1, 64]"))
    p: float = _f(0.0, "probability that an edge is rewired to a uniformly random agent "
                  "(small-world long-range links)", "", _float_range(0.0, 1.0))


@dataclass(frozen=True)
class B1Model:
    """[model] for ``run.model = "b1"``: the benchmark model's parameters."""

    sigma: float = _f(0.3, "weight of the N(0,1) sentiment shock xi", "", _float_range(0.0, 1e6))
    s0_offset: Any = _spec("none", "initial sentiment s_i = x_i - s0_offset; 'none': s_i = 0",
                           check=lambda v: v == "none" or (isinstance(v, float)
                                                           and math.isfinite(v)),
                           allowed="a finite number, or 'none'")
    fee: float = _f(0.003, "pool fee f", "fraction", ((lambda v: 0 <= v < 1), "a number in [0, 1)"))
    cash0: float = _f(1000.0, "initial cash per agent", "cash", _float_range(0.0, 1e15))
    tokens0: float = _f(10.0, "initial tokens per agent", "token", _float_range(0.0, 1e15))
    reserve_per_agent: float = _f(100.0, "pool reserves R_c = R_t = reserve_per_agent * N",
                                  "cash/agent", _positive())
    order_fraction: float = _f(0.01, "fraction of cash (buy) or token value (sell) ordered "
                               "per unit of sentiment", "fraction", _float_range(0.0, 1.0))
    momentum_scale: float = _f(100.0, "m = clip(momentum_scale * ln(P/P_prev), -1, 1)", "",
                               _finite())
    w_self: float = _f(0.5, "weight of own previous sentiment", "", _finite())
    w_neighbours: float = _f(1.0, "weight of the neighbours' mean sentiment n_i", "", _finite())
    w_momentum: float = _f(0.5, "weight of price momentum m", "", _finite())


@dataclass(frozen=True)
class EngineSection:
    """[engine]: how the engine runs the model (never what it computes)."""

    backend: str = _f("cython", "step kernels: compiled Cython or their numpy twins", "",
                      _choice("cython", "numpy"))
    halo: str = _f("neighbor", "halo exchange: MPI-3 neighbourhood collective or Isend/Irecv",
                   "", _choice("neighbor", "p2p"))
    overlap: bool = _f(True, "overlap the halo exchange with the kernel on interior agents")
    hilbert_bits: int = _f(32, "bits per coordinate of the Hilbert keys", "bit",
                           ((lambda v: 16 <= v <= 32), "an integer in [16, 32]"))
    progress_every: float = _f(2.0, "seconds between progress lines on rank 0", "s",
                               _positive())


@dataclass(frozen=True)
class OutputSection:
    """[output]: what goes into the HDF5 file."""

    every: int = _f(10, "ticks between agent snapshots (0: first and last tick only)", "tick",
                    _int_min(0))
    snapshots: bool = _f(True, "write agent snapshots")
    network: bool = _f(True, "write the network as a global edge list")


SECTIONS: dict[str, type] = {
    "run": RunSection,
    "agents": AgentsSection,
    "network": NetworkSection,
    "engine": EngineSection,
    "output": OutputSection,
}
MODELS: dict[str, type] = {"b1": B1Model}


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

    def to_toml(self) -> str:
        """The resolved scenario, every default included, as TOML text."""
        lines = [f"# scenario: {self.name}"]
        for section in ("run", "agents", "network", "model", "engine", "output"):
            lines.append(f"\n[{section}]")
            obj = getattr(self, section)
            for f in dataclasses.fields(obj):
                lines.append(f"{f.name} = {_toml_value(getattr(obj, f.name))}")
        return "\n".join(lines) + "\n"

    def with_overrides(self, **section_values) -> Scenario:
        """A copy with some fields replaced, e.g. ``with_overrides(run={"ticks": 5})``."""
        data = tomllib.loads(self.to_toml())
        for section, values in section_values.items():
            data.setdefault(section, {}).update(values)
        return build_scenario(data, self.name)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("nan" if math.isnan(v) else
                                                  ("inf" if v > 0 else "-inf"))
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


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


def _coerce(key: str, f: dataclasses.Field, value):
    """Check a value's type against the field's default type (int widens to float)."""
    kind = type(f.default)
    if f.metadata.get("allowed", "").endswith("or 'none'"):
        if isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, float) or value == "none":
            return value
        raise ScenarioError(f"{key} = {value!r} has the wrong type: "
                            f"expected {f.metadata['allowed']}")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
        raise ScenarioError(f"{key} = {value!r} has the wrong type: expected {names[kind]}")
    return value


def _build_section(name: str, cls: type, values: dict):
    if not isinstance(values, dict):
        raise ScenarioError(f"[{name}] must be a table, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ScenarioError(f"unknown key {name}.{unknown[0]} in the scenario; keys allowed in "
                            f"[{name}]: {', '.join(fields)}")
    kwargs = {}
    for fname, f in fields.items():
        key = f"{name}.{fname}"
        value = _coerce(key, f, values.get(fname, f.default))
        check = f.metadata.get("check")
        if check is not None and not check(value):
            raise ScenarioError(f"{key} = {value!r} is not allowed: must be "
                                f"{f.metadata['allowed']} ({f.metadata['doc']})")
        kwargs[fname] = value
    return cls(**kwargs)


def build_scenario(data: dict, name: str) -> Scenario:
    """Validate merged TOML data into a :class:`Scenario`."""
    allowed = set(SECTIONS) | {"model"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ScenarioError(f"unknown section [{unknown[0]}] in the scenario; allowed sections: "
                            f"{', '.join(sorted(allowed))}")
    sections = {s: _build_section(s, cls, data.get(s, {})) for s, cls in SECTIONS.items()}
    model_cls = MODELS[sections["run"].model]
    sections["model"] = _build_section("model", model_cls, data.get("model", {}))
    scenario = Scenario(name=name, **sections)
    if scenario.network.k >= scenario.agents.n:
        raise ScenarioError(f"network.k = {scenario.network.k} is not allowed with agents.n = "
                            f"{scenario.agents.n}: must be smaller than agents.n")
    return scenario


def resolve(source: str, assignments: list[str] | None = None) -> Scenario:
    """Resolve a scenario: defaults, then the file or built-in, then ``--set``. Local."""
    name, data = load_layers(source)
    data = _merge(data, parse_set(assignments or []))
    return build_scenario(data, name)


def describe_keys() -> list[tuple[str, str, str, str, str]]:
    """(key, default, unit, allowed, description) for every scenario key, for docs and --help."""
    rows = []
    for section, cls in list(SECTIONS.items()) + [("model", B1Model)]:
        for f in dataclasses.fields(cls):
            rows.append((f"{section}.{f.name}", _toml_value(f.default), f.metadata.get("unit", ""),
                         f.metadata.get("allowed", "") or type(f.default).__name__,
                         f.metadata.get("doc", "")))
    return rows
