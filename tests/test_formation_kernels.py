"""Network formation kernels against their numpy twins, and by hand."""

import numpy as np
import pytest

from tokensim_hpc._kernels import formation as cy
from tokensim_hpc.numpy_kernels import formation as tw


def _state(n, n_ghost, k, seed):
    rs = np.random.default_rng(seed)
    slots = n + n_ghost
    st = {
        "indptr": np.arange(0, n * k + 1, k, dtype=np.int64),
        "indices": rs.integers(0, max(slots, 1), n * k).astype(np.int32),
        "s": rs.uniform(-1, 1, slots),
        "x": rs.random(slots),
        "y": rs.random(slots),
        "eta": rs.uniform(0, 1, n * k),
        "gid": rs.permutation(10 * slots + 10)[:slots].astype(np.int64),
    }
    st["target"] = st["gid"][st["indices"]]
    # Each ghost's own row: k neighbour ids (some missing) and their positions.
    st["ghost_gid"] = rs.integers(0, 10 * slots + 10, (k, n_ghost)).astype(np.int64)
    st["ghost_gid"][rs.random((k, n_ghost)) < 0.1] = -1
    st["ghost_x"], st["ghost_y"] = rs.random((k, n_ghost)), rs.random((k, n_ghost))
    return st


def _strengths(mod, st, growth=0.04, decay=0.02, d_ref2=0.01, with_decay=False):
    eta = st["eta"].copy()
    dist = np.full(eta.shape[0], np.nan, dtype=np.float32)
    mod.edge_decay(st["indptr"], st["indices"], st["x"], st["y"], decay, d_ref2, dist)
    mod.edge_strengths(st["indptr"], st["indices"], st["s"], dist, eta, growth)
    return (eta, dist) if with_decay else eta


def _form(mod, st, eta, eta_min=0.3, eta0=0.5, p_long=0.2, n_total=None, tick=24,
          with_hint=False):
    target = st["target"].copy()
    hint = np.full(target.shape[0], 7, dtype=np.int32)  # kept where nothing is replaced
    eta = eta.copy()
    counts = np.zeros(3, dtype=np.int64)
    n_total = n_total or 10 * st["x"].shape[0] + 10
    mod.form_edges(st["indptr"], st["indices"], st["gid"], st["x"], st["y"], st["ghost_gid"],
                   st["ghost_x"], st["ghost_y"], target, hint, eta, eta_min, eta0, p_long,
                   n_total, 42, tick, counts)
    return (target, eta, counts, hint) if with_hint else (target, eta, counts)


@pytest.mark.parametrize("n", [0, 1, 300, 3000])
def test_strengths_twin_equal(n):
    st = _state(n, n // 3, 8, 3)
    eta_c, dist_c = _strengths(cy, st, with_decay=True)
    eta_t, dist_t = _strengths(tw, st, with_decay=True)
    np.testing.assert_array_equal(dist_c, dist_t)
    np.testing.assert_array_equal(eta_c, eta_t)
    assert np.all((dist_c >= 0) & (dist_c < 0.02))
    assert np.all((eta_c >= 0) & (eta_c <= 1))
    if n > 1000:
        assert 0.01 < np.mean(eta_c != st["eta"])  # most move, some are clipped


def test_strengths_by_hand():
    """Agreement grows a tie, distance wears it down, both clipped to [0, 1]."""
    st = {"indptr": np.array([0, 5], dtype=np.int64),
          "indices": np.array([1, 2, 3, 4, 5], dtype=np.int32),
          "s": np.array([0.5, 0.5, -0.5, 0.5, 0.5, -0.5]),
          "x": np.array([0.0, 0.0, 0.0, 0.3, 0.0, 0.3]),
          "y": np.array([0.0, 0.1, 0.0, 0.4, 0.0, 0.4]),
          "eta": np.array([0.5, 0.5, 0.8, 0.95, 0.1])}
    eta = _strengths(cy, st, growth=0.1, decay=0.2, d_ref2=0.01)
    # Edge 0: U = 1, d2 = 0.01 = d_ref2 -> +0.1 - 0.1.  Edge 1: U = 0, d2 = 0 -> 0.5.
    # Edge 2: U = 1, d2 = 0.25 -> 0.8 + 0.1 - 0.2 * 0.25 / 0.26.  Edge 3: U = 1, d2 = 0:
    # 1.05, clipped to 1.  Edge 4: U = 0, d2 = 0.25: clipped to 0.
    assert eta[0] == pytest.approx(0.5, abs=1e-8)
    assert eta[1] == 0.5
    assert eta[2] == pytest.approx(0.9 - 0.2 * 0.25 / 0.26, rel=1e-7)  # float32 decay
    assert eta[3] == 1.0 and eta[4] == 0.0


@pytest.mark.parametrize("n,p_long", [(0, 0.2), (1, 0.2), (500, 0.2), (2000, 0.0),
                                      (2000, 1.0)])
def test_form_twin_equal(n, p_long):
    st = _state(n, n // 2, 6, 5)
    got = [_form(mod, st, st["eta"], p_long=p_long, with_hint=True) for mod in (cy, tw)]
    for a, b in zip(*got, strict=True):
        np.testing.assert_array_equal(a, b)
    target, eta, counts, hint = got[0]
    # The hint of a new edge: its target's owned slot, -2 (a ghost slot) or -1.
    new_edge = target != st["target"]
    assert np.all(hint[~new_edge] == 7)
    owned_hint = new_edge & (hint >= 0)
    assert np.all(st["gid"][hint[owned_hint]] == target[owned_hint])
    assert np.all(hint[owned_hint] < n)
    assert np.all(np.isin(hint[new_edge & (hint < 0)], [-1, -2]))
    ghost_hint = new_edge & (hint == -2)
    assert np.all(np.isin(target[ghost_hint], st["gid"][n:]))
    if n >= 2000 and p_long < 1.0:  # a third of this state's slots are ghosts
        assert owned_hint.sum() > 0.3 * new_edge.sum() and ghost_hint.sum() > 0
    weak = st["eta"] < 0.3
    assert counts.sum() == weak.sum()
    assert np.all(target[~weak] == st["target"][~weak]) and np.all(eta[~weak] == st["eta"][~weak])
    changed = target != st["target"]
    assert np.all(eta[changed] == 0.5) and changed.sum() == counts[0] + counts[1]
    if n >= 2000:
        assert counts[0 if p_long == 1.0 else 1] > 0.5 * weak.sum()
        # A new edge is no self-loop and appears once in its row.
        rows, new = target.reshape(n, 6), changed.reshape(n, 6)
        same = (rows[:, :, None] == rows[:, None, :]).sum(axis=2)
        assert np.all(same[new] == 1)
        assert not np.any((rows == st["gid"][:n, None]) & new)


def test_friend_of_friend_through_an_owned_friend():
    """An owned friend's row is read as it was before the call. Rows 0 (id 10: edges to
    11, 12) and 1 (id 11: edges to 10, 13) are each other's strongest friends. Row 0
    replaces 12 by 13 (from row 1); row 1 then replaces 13 by 12, from row 0 as it was
    (as changed, row 0 would offer only 11 itself and 13)."""
    st = {"indptr": np.array([0, 2, 4], dtype=np.int64),
          "indices": np.array([1, 2, 0, 3], dtype=np.int32),
          "gid": np.array([10, 11, 12, 13], dtype=np.int64),
          "x": np.zeros(4), "y": np.zeros(4),
          "ghost_gid": np.full((2, 2), -1, dtype=np.int64),
          "ghost_x": np.zeros((2, 2)), "ghost_y": np.zeros((2, 2))}
    st["target"] = st["gid"][st["indices"]]
    for mod in (cy, tw):
        target, eta, counts = _form(mod, st, np.array([0.9, 0.05, 0.9, 0.05]), p_long=0.0,
                                    n_total=100)
        assert target.tolist() == [11, 13, 10, 12] and counts.tolist() == [0, 2, 0]


def test_friend_of_friend_by_hand():
    """Agent 0's weak edges go to its strongest friend's nearest other neighbours."""
    gid = np.array([100, 101, 102, 103], dtype=np.int64)
    st = {"indptr": np.array([0, 3], dtype=np.int64),
          "indices": np.array([1, 2, 3], dtype=np.int32), "gid": gid,
          "x": np.zeros(4), "y": np.zeros(4),
          # Friend 102 (slot 2, strongest). Its neighbours: 100 (agent 0 itself), 101 (a
          # neighbour until edge 0 is replaced; distance 0.9), 200 at distance 0.5, 201 and
          # 202 at 0.2.
          "ghost_gid": np.full((5, 3), -1, dtype=np.int64),
          "ghost_x": np.zeros((5, 3)), "ghost_y": np.zeros((5, 3))}
    st["ghost_gid"][:, 1] = [100, 101, 200, 202, 201]  # slot 2 is ghost 1
    st["ghost_x"][:, 1] = [0.0, 0.9, 0.5, 0.2, 0.2]
    st["target"] = gid[st["indices"]]
    eta = np.array([0.1, 0.9, 0.05])
    target, eta_new, counts = _form(cy, st, eta, p_long=0.0, n_total=1000)
    # Row order: edge 0 takes the nearest (0.2; ids 201 < 202), edge 2 the next one.
    assert target.tolist() == [201, 102, 202]
    assert eta_new.tolist() == [0.5, 0.9, 0.5] and counts.tolist() == [0, 2, 0]
    # With no strong edge at all, every weak edge goes long range.
    target, _, counts = _form(cy, st, np.array([0.1, 0.2, 0.05]), p_long=0.0, n_total=1000)
    assert counts[0] + counts[2] == 3 and counts[1] == 0
    assert np.all((target >= 0) & (target < 1000))


@pytest.mark.parametrize("n_rows", [0, 1, 50])
def test_row_tables_and_gather_ids_twin_equal(n_rows):
    """The rows sent to other ranks as (k, rows) tables of their targets' ids and
    positions, and every edge's target id: both backends, against indexing by hand."""
    rs = np.random.default_rng(n_rows)
    n, k, slots = 80, 6, 120
    indices = rs.integers(0, slots, n * k).astype(np.int32)
    slot_gid = rs.permutation(10 * slots)[:slots].astype(np.int64)
    x, y = rs.random(slots), rs.random(slots)
    rows = rs.integers(0, n, n_rows).astype(np.int64)  # repeats allowed (several ranks)
    for mod in (cy, tw):
        g, px, py = np.empty((k, n_rows), dtype=np.int64), np.empty((k, n_rows)), \
            np.empty((k, n_rows))
        mod.row_tables(indices, rows, slot_gid, x, y, g, px, py)
        for r, i in enumerate(rows):
            j = indices[i * k:(i + 1) * k]
            np.testing.assert_array_equal(g[:, r], slot_gid[j])
            np.testing.assert_array_equal(px[:, r], x[j])
            np.testing.assert_array_equal(py[:, r], y[j])
        out = np.empty(n * k, dtype=np.int64)
        mod.gather_ids(indices, slot_gid, out)
        np.testing.assert_array_equal(out, slot_gid[indices.astype(np.int64)])
