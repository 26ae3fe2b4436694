"""Halo exchange: neighbours' agent columns copied into local ghost slots.

The plan is built once from the network's remote columns (and rebuilt when
the network or the partition changes): ghost slots follow the owned slots,
grouped by owner rank and sorted by global id within each owner; every rank
learns which of its agents each neighbour rank needs. An exchange then
packs those agents' values and moves them with one MPI-3 neighbourhood
collective on a distributed-graph communicator (``neighbor``) or with
Isend/Irecv pairs (``p2p``). ``start``/``finish`` let the caller run the
kernel on interior agents while the messages are in flight.
"""

from __future__ import annotations

import functools

import numpy as np
from mpi4py import MPI

from .exchange import alltoallv, displacements, exchange_counts, mpi_type
from .mpi import min_over_ranks

_TAG = 7311
_CHUNK = 1 << 20


def _chunks(n):
    return [(s, min(n, s + _CHUNK)) for s in range(0, n, _CHUNK)]


def sorted_owned(owned_gid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the permutation that sorts ``owned_gid``, the sorted ids). Local."""
    by_gid = np.argsort(owned_gid, kind="stable")
    return by_gid, owned_gid[by_gid]


def find_sorted(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Place of each key in the ascending array ``values`` (unique), -1 for keys that
    are not there. Local."""
    keys = np.asarray(keys)
    if not values.shape[0]:
        return np.full(keys.shape[0], -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(values, keys), values.shape[0] - 1)
    return np.where(values[pos] == keys, pos, -1)


def find_in_order(owned_order: tuple[np.ndarray, np.ndarray], gid: np.ndarray) -> np.ndarray:
    """Local index of each id in ``gid`` from :func:`sorted_owned`'s pair, -1 for ids
    not among them. Local."""
    by_gid, sorted_gid = owned_order
    pos = find_sorted(sorted_gid, np.asarray(gid, dtype=np.int64))
    return np.where(pos >= 0, by_gid[pos], -1)


def rows_without_ghosts(edge_local: np.ndarray, indptr: np.ndarray, n_owned: int) -> np.ndarray:
    """Rows of a CSR whose columns are all owned slots (< n_owned). Local."""
    ghost_edge = np.append(edge_local >= n_owned, False)
    # The padding makes every row start a valid reduceat index, empty trailing rows too.
    # (Booleans: one byte an edge; logical_or is "any ghost in the row".)
    any_ghost = np.logical_or.reduceat(ghost_edge, indptr[:-1]) if indptr.shape[0] > 1 \
        else np.zeros(0, dtype=bool)
    any_ghost[indptr[:-1] == indptr[1:]] = False  # reduceat repeats a value on empty rows
    return np.flatnonzero(~any_ghost).astype(np.int64)


class HaloPlan:
    """Which values go where in a halo exchange. Construction is collective.

    Parameters
    ----------
    comm : MPI communicator
    owned_gid : int64 array
        Global ids of the owned agents, in local order.
    edge_gid : int64 array
        Global ids of every edge's target (the CSR columns, any order).
    directory : :class:`tokensim_hpc.parallel.directory.Directory`
        Owner lookup for ids that are not owned here.
    mode : "neighbor" or "p2p"
    find_owned : callable, optional
        ``find_owned(ids)``: the local index of each id, -1 for ids not owned here
        (:meth:`tokensim_hpc.engine.Domain.find_owned`), when the caller has a way
        to look ids up (a rebuild need not sort the owned ids again, nor a plan over a
        part of the network sort that part's). By default the owned ids are sorted.
    edge_local_hint : int32 array, optional
        Local index of edge targets already known to be owned, -2 for targets
        known not to be owned, -1 elsewhere; taken over (not copied) as the
        plan's edge table, so that only the -1 edges are searched among the
        owned ids.

    Attributes
    ----------
    edge_local : int32 array
        Local slot of every edge target: owned index, or n_owned + ghost index.
    ghost_gid : int64 array
        Global id of every ghost slot.
    ghost_owner : int32 array
        Rank that owns every ghost slot's agent.
    """

    def __init__(self, comm, owned_gid, edge_gid, directory, mode="neighbor",
                 edge_local_hint=None, find_owned=None):
        self.comm = comm
        self.mode = mode
        self.n_owned = int(owned_gid.shape[0])
        size = comm.size
        if find_owned is None:
            find_owned = functools.partial(find_in_order, sorted_owned(owned_gid))
        # Edges are mapped in chunks, straight into int32, to keep the peak memory low;
        # only edges without a known local index are searched by id.
        if edge_local_hint is None:
            self.edge_local = np.full(edge_gid.shape[0], -1, dtype=np.int32)
        else:
            self.edge_local = edge_local_hint
        remote_parts = []
        for s, e in _chunks(edge_gid.shape[0]):
            part = self.edge_local[s:e]
            unknown = np.flatnonzero(part == -1)
            targets = edge_gid[s:e][unknown]
            local = find_owned(targets)
            owned = local >= 0
            part[unknown[owned]] = local[owned]
            remote_parts.append(np.unique(targets[~owned]))
            remote_parts.append(np.unique(edge_gid[s:e][part == -2]))
        remote = np.unique(np.concatenate(remote_parts)) if remote_parts else \
            np.empty(0, dtype=np.int64)
        owner = directory.lookup(remote)
        order = np.lexsort((remote, owner))
        self.ghost_gid = remote[order]
        ghost_owner = owner[order]
        self.ghost_owner = ghost_owner.astype(np.int32)
        self.n_ghost = int(self.ghost_gid.shape[0])
        if self.n_owned + self.n_ghost >= 2**31:
            raise OverflowError("more than 2**31 owned+ghost agents on one rank; use more ranks")
        # ghost_gid is sorted by (owner, gid), not by gid: search it through its
        # gid-sorting permutation to find each remote target's ghost slot.
        by_ghost_gid = np.argsort(self.ghost_gid, kind="stable")
        ghost_sorted = self.ghost_gid[by_ghost_gid]
        self._ghost_by_gid = by_ghost_gid  # kept for GhostDirectory
        for s, e in _chunks(edge_gid.shape[0]):
            part = self.edge_local[s:e]
            remote_edge = part < 0
            part[remote_edge] = self.n_owned + by_ghost_gid[
                np.searchsorted(ghost_sorted, edge_gid[s:e][remote_edge])]

        self.recv_counts = np.bincount(ghost_owner, minlength=size).astype(np.int64)
        self.send_counts = exchange_counts(comm, self.recv_counts)
        wanted = alltoallv(comm, self.ghost_gid, self.recv_counts, self.send_counts)
        self.send_idx = find_owned(wanted) if wanted.size else np.empty(0, dtype=np.int64)
        # Every id asked for should be owned here: the directory sent it to this rank. One
        # that is not (a directory out of date) would be served another agent's values;
        # every rank learns of it and raises, so none is left waiting in an exchange.
        stray = wanted[self.send_idx < 0]
        first = min_over_ranks(comm, int(stray.min()) if stray.size else None)
        if first is not None:
            raise RuntimeError(f"halo plan: agent {first} was asked of a rank that does not "
                               "own it (the owner directory is out of date)")
        self.sources = np.flatnonzero(self.recv_counts).astype(np.int32)
        self.destinations = np.flatnonzero(self.send_counts).astype(np.int32)
        self._rc = self.recv_counts[self.sources].astype(np.int32)
        self._sc = self.send_counts[self.destinations].astype(np.int32)
        self._rd = displacements(self._rc).astype(np.int32)
        self._sd = displacements(self._sc).astype(np.int32)
        self.graph = None
        if mode == "neighbor":
            self.graph = comm.Create_dist_graph_adjacent(
                self.sources.tolist(), self.destinations.tolist(), reorder=False)
        self._send = {}
        self._reduce_plan = None

    def slot_owner(self, slots: np.ndarray) -> np.ndarray:
        """Owner rank of each local slot (owned or ghost). Local."""
        slots = np.asarray(slots, dtype=np.int64)
        owner = np.full(slots.shape[0], self.comm.rank, dtype=np.int32)
        ghost = slots >= self.n_owned
        owner[ghost] = self.ghost_owner[slots[ghost] - self.n_owned]
        return owner

    @property
    def n_send(self) -> int:
        """Number of values this rank sends per column and exchange."""
        return int(self.send_idx.shape[0])

    def split_rows(self, indptr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(interior, boundary) owned rows: edges all to owned agents, or not. Local.

        Interior rows need no ghost value, so their kernel can run while the
        exchange is in flight.
        """
        interior = rows_without_ghosts(self.edge_local, indptr, self.n_owned)
        is_interior = np.zeros(self.n_owned, dtype=bool)
        is_interior[interior] = True
        return interior, np.flatnonzero(~is_interior).astype(np.int64)

    def start(self, column: np.ndarray):
        """Begin sending ghost values of one column (owned + ghost slots). Collective."""
        buf = self._send.get(column.dtype.str)
        if buf is None or buf.shape[0] != self.n_send:
            buf = self._send[column.dtype.str] = np.empty(self.n_send, dtype=column.dtype)
        np.take(column, self.send_idx, out=buf)
        return self._post(buf, column[self.n_owned:self.n_owned + self.n_ghost])

    def send_values(self, values: np.ndarray, ghosts: np.ndarray) -> None:
        """Values the caller gathered in send order (one per entry of ``send_idx``) into
        ``ghosts`` (one per ghost slot, contiguous, the same dtype): an exchange
        without a column of every slot. Collective."""
        self.finish(self._post(np.ascontiguousarray(values), ghosts))

    def _post(self, buf: np.ndarray, ghosts: np.ndarray):
        """Post the messages of one exchange: ``buf`` in send order, into ``ghosts``."""
        dtype = mpi_type(buf.dtype)
        if self.mode == "neighbor":
            return [self.graph.Ineighbor_alltoallv([buf, (self._sc, self._sd), dtype],
                                                   [ghosts, (self._rc, self._rd), dtype])]
        reqs = [self.comm.Irecv([ghosts[d:d + c], dtype], source=int(src), tag=_TAG)
                for src, c, d in zip(self.sources, self._rc, self._rd, strict=False)]
        reqs += [self.comm.Isend([buf[d:d + c], dtype], dest=int(dst), tag=_TAG)
                 for dst, c, d in zip(self.destinations, self._sc, self._sd, strict=False)]
        return reqs

    @staticmethod
    def finish(requests) -> None:
        """Wait until the ghost slots hold the neighbours' values. Local completion."""
        MPI.Request.Waitall(requests)

    def exchange(self, *columns: np.ndarray) -> None:
        """Fill the ghost slots of each column. Collective."""
        for column in columns:
            self.finish(self.start(column))

    def reduce_ghosts(self, column: np.ndarray, ufunc=np.minimum) -> None:
        """The reverse of an exchange: every rank's ghost values of ``column`` go back to
        the owners and are combined into the owned slots with ``ufunc`` (e.g. the
        minimum of the labels proposed along cross-partition edges). Collective."""
        ghosts = np.ascontiguousarray(column[self.n_owned:self.n_owned + self.n_ghost])
        # Ghosts are grouped by owner in rank order, and each owner's send_idx lists the
        # agents in the order this rank asked for them, so the values line up.
        got = alltoallv(self.comm, ghosts, self.recv_counts, self.send_counts)
        if ufunc is np.add and column.dtype == np.float64:
            # Float sums need no sorted plan: one weighted count per owned slot, in the
            # order received (exact for the integer values callers pass, below 2**53).
            column[:self.n_owned] += np.bincount(self.send_idx, weights=got,
                                                 minlength=self.n_owned)
            return
        # An agent may have gone to several ranks: combine its values by a reduceat over
        # send_idx sorted once (much faster than ufunc.at), then into the owned slot. The
        # order of the combination depends on the partition: with np.add it is exact only
        # for integer values (below 2**53), which is what callers pass.
        order, starts, targets = self._reduce_order()
        if order.size:
            column[targets] = ufunc(column[targets], ufunc.reduceat(got[order], starts))

    def _reduce_order(self):
        """(send_idx's sorting permutation, where each agent's run starts, the agents),
        made once per plan."""
        if self._reduce_plan is None:
            order = np.argsort(self.send_idx, kind="stable")
            first = np.r_[True, self.send_idx[order][1:] != self.send_idx[order][:-1]] \
                if order.size else np.zeros(0, dtype=bool)
            starts = np.flatnonzero(first)
            self._reduce_plan = (order, starts, self.send_idx[order][starts])
        return self._reduce_plan

    @property
    def sent_agents(self) -> np.ndarray:
        """The owned slots other ranks hold as ghosts, ascending, each once. Local."""
        return self._reduce_order()[2]

    def route_to_owners(self, slots: np.ndarray) -> OwnerRoute:
        """The route of records addressed to ghost slots to the ranks that own those
        agents, for :meth:`OwnerRoute.send` to move columns along, once or many times.
        Collective (one exchange of counts and one all-to-all of places).

        ``slots`` holds one ghost slot (``n_owned <= slot < n_owned + n_ghost``)
        per record. Records travel sorted by ghost slot (stably), so ``route.order``
        (the records in sending order) and, at the owners, ``route.owned`` (the
        owned slot of every record received, grouped by sending rank in rank
        order) depend only on ``slots`` and this plan.
        """
        comm, size = self.comm, self.comm.size
        ghost = np.asarray(slots, dtype=np.int64) - self.n_owned
        if ghost.size and (ghost.min() < 0 or ghost.max() >= self.n_ghost):
            raise ValueError("route_to_owners: every slot must be a ghost slot")
        order = np.argsort(ghost, kind="stable")
        ghost = ghost[order]
        owner = self.ghost_owner[ghost]
        counts = np.bincount(owner, minlength=size).astype(np.int64)
        recv_counts = exchange_counts(comm, counts)
        # Ghosts are grouped by owner in rank order: a record's place in the list of
        # agents this rank asked its owner for is its ghost index minus the owner's start.
        place = ghost - displacements(self.recv_counts)[owner]
        got = alltoallv(comm, place, counts, recv_counts)
        sender = np.repeat(np.arange(size, dtype=np.int64), recv_counts)
        owned = self.send_idx[displacements(self.send_counts)[sender] + got] if got.size \
            else np.empty(0, dtype=np.int64)
        return OwnerRoute(comm, order, counts, recv_counts, owned.astype(np.int64))

    def send_to_owners(self, slots: np.ndarray, *columns: np.ndarray) -> tuple:
        """Records addressed to ghost slots, sent to the ranks that own those agents.
        Collective.

        ``slots`` holds one ghost slot (``n_owned <= slot < n_owned + n_ghost``)
        per record, and each of ``columns`` one value per record. Returns the
        owned slot of every record received, then the received columns, grouped
        by sending rank in rank order (each rank's records sorted by ghost
        slot, stably). Unlike :meth:`reduce_ghosts`, records are not combined:
        an agent gets as many records as were addressed to it. The same inputs
        give the same output order; :meth:`route_to_owners` keeps the route for
        later columns.
        """
        route = self.route_to_owners(slots)
        return (route.owned, *route.send(*columns))

    def destroy(self) -> None:
        """Free the distributed-graph communicator. Collective."""
        if self.graph is not None:
            self.graph.Free()
            self.graph = None


class OwnerRoute:
    """A precomputed route of records from the ranks that hold them as ghost-slot
    records to the owners of those agents (:meth:`HaloPlan.route_to_owners`).

    Attributes
    ----------
    order : int64 array
        The records (indices into the ``slots`` the route was made from) in the
        order they are sent.
    owned : int64 array
        The owned slot of every record received here, in the order received
        (grouped by sending rank in rank order).
    """

    def __init__(self, comm, order, send_counts, recv_counts, owned):
        self.comm = comm
        self.order = order
        self.send_counts = send_counts
        self.recv_counts = recv_counts
        self.owned = owned

    @property
    def n_send(self) -> int:
        """Records this rank sends."""
        return int(self.order.shape[0])

    @property
    def n_recv(self) -> int:
        """Records this rank receives."""
        return int(self.owned.shape[0])

    def send(self, *columns: np.ndarray, in_route_order: bool = False) -> tuple:
        """Each column (one value per record) moved to the owners, one all-to-all per
        column; returns the received columns, in the order of :attr:`owned`.
        ``in_route_order``: the columns are already in sending order (``column[k]``
        belongs to record ``order[k]``), which saves a permutation. Collective."""
        out = []
        for c in columns:
            c = np.asarray(c)
            if c.shape[:1] != (self.n_send,):
                raise ValueError(f"OwnerRoute.send: one value per record ({self.n_send}) is "
                                 f"needed, got shape {c.shape}")
            c = np.ascontiguousarray(c if in_route_order else c[self.order])
            out.append(alltoallv(self.comm, c, self.send_counts, self.recv_counts))
        return tuple(out)


class GhostDirectory:
    """Owner lookup for ids that are ghosts of a plan (a plan over a part of its
    edges needs no directory). ``lookup`` is local, unlike Directory's, unless a
    ``fallback`` directory is given for the ids that are not ghosts of the plan
    (then it is collective: the fallback is asked once, on every rank).

    ``slots``: the ghost slots whose ids will be looked up (all of the plan's when
    None); giving only those keeps the cost with the part, not the whole halo."""

    def __init__(self, plan: HaloPlan, slots: np.ndarray | None = None, fallback=None):
        self.fallback = fallback
        if slots is None:  # every ghost: the plan has sorted their ids already
            by = plan._ghost_by_gid
            self._gid, self._owner = plan.ghost_gid[by], plan.ghost_owner[by].astype(np.int64)
            return
        ghost = np.asarray(slots, dtype=np.int64) - plan.n_owned
        gid = plan.ghost_gid[ghost]
        by = np.argsort(gid, kind="stable")
        self._gid = gid[by]
        self._owner = plan.ghost_owner[ghost][by].astype(np.int64)

    def lookup(self, gid: np.ndarray) -> np.ndarray:
        """Owner rank of each id in ``gid``: every one among the directory's ghosts, or
        the others asked of the fallback directory."""
        gid = np.asarray(gid, dtype=np.int64)
        if self.fallback is None:
            return self._owner[np.searchsorted(self._gid, gid)]
        pos = find_sorted(self._gid, gid)
        known = pos >= 0
        owner = np.empty(gid.shape[0], dtype=np.int64)
        owner[known] = self._owner[pos[known]]
        owner[~known] = self.fallback.lookup(gid[~known])
        return owner
