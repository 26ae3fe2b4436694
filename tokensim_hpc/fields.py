"""Validated configuration fields: the machinery behind scenario sections.

A section is a frozen dataclass whose fields carry a default, a one-line doc,
a unit and a range check with its wording (``setting``). ``build_section`` turns a
TOML table into such a dataclass, refusing unknown keys, wrong types and
values out of range with a :class:`ScenarioError` that names the key, the
value and what is allowed. Used by ``scenario`` (the [run], [agents], ...
sections) and ``markets.spec`` (each [[chains]], [[pools]] and [[bridges]]
entry). Local; no MPI.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import field

from .errors import ScenarioError


def spec_field(default, doc, *, unit="", check=None, allowed="", required=False):
    """A scenario field: default, one-line doc, unit, range check and its wording.

    A required field has no meaningful default: leaving it out is an error.
    """
    return field(default=default, metadata={"doc": doc, "unit": unit, "check": check,
                                            "allowed": allowed, "required": required})


def int_min(lo):
    return (lambda v: v >= lo), f"an integer >= {lo}"


def float_range(lo, hi, lo_open=False, hi_open=False):
    def check(v):
        return ((v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
                and math.isfinite(v))
    return check, f"a number in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"


def finite():
    return math.isfinite, "a finite number"


def positive():
    return (lambda v: math.isfinite(v) and v > 0), "a finite number > 0"


def choice(*options):
    return (lambda v: v in options), "one of " + ", ".join(repr(o) for o in options)


def setting(default, doc, unit="", rule=None, required=False):
    """``spec_field`` with the check and its wording as one ``rule`` pair."""
    check, allowed = rule if rule else (None, "")
    return spec_field(default, doc, unit=unit, check=check, allowed=allowed, required=required)


def toml_value(v) -> str:
    if isinstance(v, tuple | list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("nan" if math.isnan(v) else
                                                  ("inf" if v > 0 else "-inf"))
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def toml_tables(table: str, entries, keys=None) -> list[str]:
    """Lines of a TOML array of tables ``[[table]]``, one per dataclass entry, every
    field written; ``keys`` renames fields whose TOML key differs."""
    lines = []
    for entry in entries:
        lines.append(f"\n[[{table}]]")
        for key, value in entry.__dict__.items():
            lines.append(f"{(keys or {}).get(key, key)} = {toml_value(value)}")
    return lines


def coerce(key: str, f: dataclasses.Field, value):
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


def build_section(name: str, cls: type, values: dict):
    """Validate the TOML table ``values`` into the dataclass ``cls``; ``name`` prefixes keys."""
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
        if f.metadata.get("required") and fname not in values:
            allowed = f.metadata.get("allowed") or type(f.default).__name__
            raise ScenarioError(f"{key} is missing: must be {allowed} ({f.metadata['doc']})")
        value = coerce(key, f, values.get(fname, f.default))
        check = f.metadata.get("check")
        if check is not None and not check(value):
            raise ScenarioError(f"{key} = {value!r} is not allowed: must be "
                                f"{f.metadata['allowed']} ({f.metadata['doc']})")
        kwargs[fname] = value
    return cls(**kwargs)
