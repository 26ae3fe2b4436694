"""Scenario layering and validation: every refusal names the key, the value and what is allowed."""

import tomllib

import pytest

from tokensim_hpc.errors import ScenarioError
from tokensim_hpc.scenario import builtin_names, describe_keys, resolve


def test_builtin_defaults_and_layers(tmp_path):
    sc = resolve("b1")
    assert sc.agents.n == 100_000 and sc.network.k == 8 and sc.model.sigma == 0.3
    f = tmp_path / "mine.toml"
    f.write_text("[agents]\nn = 5000\n[network]\nk = 6\n")
    sc = resolve(str(f), ["network.k=4", "engine.backend=numpy", "model.s0_offset=0.25"])
    assert sc.name == "mine" and sc.agents.n == 5000
    assert sc.network.k == 4 and sc.engine.backend == "numpy" and sc.model.s0_offset == 0.25


def test_resolved_toml_round_trips():
    sc = resolve("b1", ["agents.n=123", "network.p=0.25"])
    data = tomllib.loads(sc.to_toml())
    assert data["agents"]["n"] == 123 and data["network"]["p"] == 0.25
    assert data["model"]["s0_offset"] == "none"
    assert sc.with_overrides(run={"ticks": 3}).run.ticks == 3


@pytest.mark.parametrize("sets, words", [
    (["agents.n=-5"], ["agents.n", "-5", "integer >= 2"]),
    (["network.k=0"], ["network.k", "0", "[1, 64]"]),
    (["network.p=1.5"], ["network.p", "1.5", "[0.0, 1.0]"]),
    (["engine.backend=gpu"], ["engine.backend", "gpu", "'cython', 'numpy'"]),
    (["run.ticks=ten"], ["run.ticks", "ten", "integer"]),
    (["network.kk=3"], ["network.kk", "allowed", "k, p"]),
    (["nosection.x=1"], ["nosection", "allowed sections"]),
    (["model.sigma=true"], ["model.sigma", "True", "number"]),
    (["agents.n=8", "network.k=8"], ["network.k", "smaller than agents.n"]),
    (["agentsn=3"], ["SECTION.KEY=VALUE"]),
])
def test_refusals_name_key_value_and_allowed(sets, words):
    with pytest.raises(ScenarioError) as info:
        resolve("b1", sets)
    for w in words:
        assert w in str(info.value)


def test_toml_syntax_error_names_file_and_line(tmp_path):
    f = tmp_path / "broken.toml"
    f.write_text("[agents]\nn = 10\n[network\nk = 3\n")
    with pytest.raises(ScenarioError) as info:
        resolve(str(f))
    assert "broken.toml" in str(info.value) and "line 3" in str(info.value)


def test_unknown_scenario_lists_builtins():
    with pytest.raises(ScenarioError) as info:
        resolve("nosuchscenario")
    assert "built-in" in str(info.value) and "b1" in str(info.value)
    assert "b1" in builtin_names()


def test_every_key_is_documented():
    keys = {row[0] for row in describe_keys()}
    for key in ("run.ticks", "run.seed", "agents.n", "network.k", "network.p", "model.sigma",
                "model.s0_offset", "output.every", "engine.backend"):
        assert key in keys
    assert all(row[4] for row in describe_keys())


def test_market_tables_belong_to_the_economy(tmp_path):
    f = tmp_path / "b1_with_pool.toml"
    f.write_text('[[pools]]\nchain = "x"\nbase = "A"\nquote = "B"\n'
                 'reserve_base = 1.0\nreserve_quote = 1.0\n')
    with pytest.raises(ScenarioError, match=r"\[\[pools\]\] is not allowed with run.model = 'b1'"):
        resolve(str(f))
    sc = resolve("defi", ["model.frac_noise=0.0", "model.frac_herding=0.45"])
    assert len(sc.markets.pools) == 6 and len(sc.markets.bridges) == 2
    assert tomllib.loads(sc.to_toml())["pools"][0]["chain"] == "ethereum"
    with pytest.raises(ScenarioError, match="must sum to 1"):
        resolve("defi", ["model.frac_noise=0.5"])
    with pytest.raises(ScenarioError, match=r"network.rewire_every = 24 is not allowed with "
                       r"run.model = 'b1'"):
        resolve("b1", ["network.rewire_every=24"])
    with pytest.raises(ScenarioError, match=r"network.eta_min = 0.6 is not allowed: must be "
                       r"smaller than network.eta0 = 0.5"):
        resolve("defi", ["network.eta_min=0.6"])
    with pytest.raises(ScenarioError, match="model.lp_stress = 0.1 is not allowed"):
        resolve("defi", ["model.lp_stress=0.1", "model.lp_calm=0.2"])
    g = tmp_path / "no_pools.toml"
    g.write_text('[run]\nmodel = "defi"\n[[chains]]\nname = "a"\ntokens = ["X", "Y"]\n')
    with pytest.raises(ScenarioError, match="at least one"):
        resolve(str(g))
