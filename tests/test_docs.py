"""The README documents every scenario key, every dataset and every root attribute."""

from mpirun import REPO

from tokensim_hpc.io import names
from tokensim_hpc.scenario import describe_keys

README = (REPO / "README.md").read_text()


def test_every_scenario_key_is_in_the_readme():
    missing = [row[0] for row in describe_keys() if f"`{row[0]}`" not in README]
    assert not missing, f"README lacks scenario keys: {missing}"


def test_every_dataset_and_attribute_is_in_the_readme():
    missing = [p for p in names.ALL if f"`/{p}`" not in README]
    missing += [a for a in names.ROOT_ATTRS if f"`{a}`" not in README]
    assert not missing, f"README lacks: {missing}"


def test_readme_shows_the_two_commands():
    assert "make run" in README and "make test" in README


def test_readme_key_table_is_the_generated_one(capsys):
    from tokensim_hpc.cli import main

    assert main(["keys", "--markdown"]) == 0
    table = capsys.readouterr().out.strip()
    assert table in README, "regenerate it: python -m tokensim_hpc keys --markdown"
