"""Process memory settings (tokensim_hpc.memory): glibc's malloc and numpy's huge pages."""

import sys

import pytest

from tokensim_hpc import memory


def _advice_now(switch) -> bool:
    """numpy's current huge-page advice, read through its switch (which returns the
    previous value) and put back."""
    current = switch(False)
    switch(current)
    return bool(current)


@pytest.fixture
def switch():
    found = memory._hugepage_switch()
    if found is None:
        pytest.skip("this numpy has no huge-page switch")
    before = _advice_now(found)
    yield found
    found(before)


@pytest.mark.parametrize("start", [True, False])
def test_small_pages_turns_the_advice_off_and_restores_it(switch, start):
    switch(start)
    with memory.small_pages():
        assert _advice_now(switch) is False
    assert _advice_now(switch) is start


def test_small_pages_restores_the_advice_after_an_error(switch):
    switch(True)
    with pytest.raises(ZeroDivisionError), memory.small_pages():
        1 / 0  # noqa: B018
    assert _advice_now(switch) is True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_malloc_settings_are_accepted_by_glibc():
    try:
        assert memory.reuse_freed_memory() is True
    finally:
        assert memory.return_freed_memory() is True
