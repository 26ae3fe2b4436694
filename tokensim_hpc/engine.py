"""The SPMD engine: build this rank's domain, step the model, write output.

Every rank runs the same code on its own block of the global Hilbert order.
Initialisation is scalable: each rank draws only its own block of agent
ids, the parallel sort sends agents to their owners, and the network and
halo plan are built from exchanges near partition boundaries only.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from . import kernels as kernel_loader
from .memory import return_freed_memory, reuse_freed_memory
from .models import b1 as b1_model
from .models import defi as defi_model
from .network import LocalNetwork, rewire_small_world
from .parallel.directory import Directory
from .parallel.halo import GhostDirectory, HaloPlan, find_in_order, find_sorted, sorted_owned
from .parallel.knn import distributed_knn
from .parallel.mpi import allreduce_max_int, allreduce_min_max, barrier, wtime
from .parallel.partition import hilbert_partition
from .timing import Progress, Timers


def _find_within(within: tuple, gid: np.ndarray) -> np.ndarray:
    """A sub-domain's local index of each id (-1: not among its agents), looked up in
    the parent domain: ``within`` = (parent, the agents' local indices there, ascending)."""
    parent, agents = within
    gid = np.asarray(gid, dtype=np.int64)
    if not gid.shape[0] or not agents.shape[0]:
        # (Nothing to look up or nothing to find: the parent's ids need not be sorted.)
        return np.full(gid.shape[0], -1, dtype=np.int64)
    # (An id not owned by the parent is -1 there, and -1 is never among the agents.)
    local = parent.find_owned(gid)
    places = parent.places_of(agents)
    if places is None:  # the parent's map serves a newer sub-domain: search
        return find_sorted(agents, local)
    # The map is right at the agents' slots only: a slot outside them reads a stale
    # place, which the comparison turns into -1.
    place = np.minimum(places[np.maximum(local, 0)], agents.shape[0] - 1)
    return np.where((local >= 0) & (agents[place] == local), place, -1).astype(np.int64)


@dataclass
class Domain:
    """This rank's agents and their network. Owned agents are in global Hilbert order.

    ``offset`` is the global position of the first owned agent, so owned agent
    i is agent number offset + i of the global order on any rank count.
    """

    comm: object
    n_total: int
    offset: int
    cuts: np.ndarray
    gid: np.ndarray
    x: np.ndarray | None  # positions of the owned agents (None in a sub-domain)
    y: np.ndarray | None
    indptr: np.ndarray
    indices: np.ndarray
    weights: np.ndarray
    uniform_weight: float
    halo: HaloPlan
    interior_rows: np.ndarray
    boundary_rows: np.ndarray
    # A sub-domain's (parent domain, its agents' local indices there, ascending): ids
    # are looked up through the parent's sorted ids, not sorted again.
    within: tuple | None = None

    @functools.cached_property
    def all_rows(self) -> np.ndarray:
        """Every owned row, in order (for runs without overlap; built on first use). Local."""
        return np.arange(self.n_owned, dtype=np.int64)

    @functools.cached_property
    def directory(self) -> Directory:
        """Owner lookup of global ids (built on first use; collective then). Valid while
        the owned agents stay where they are."""
        return Directory(self.comm, self.gid, self.n_total)

    @functools.cached_property
    def owned_order(self) -> tuple[np.ndarray, np.ndarray]:
        """(permutation sorting the owned ids, the sorted ids), for lookups by id. Local."""
        return sorted_owned(self.gid)

    def find_owned(self, gid: np.ndarray) -> np.ndarray:
        """Local index of each id in ``gid``, -1 for the ids this rank does not own.
        Local."""
        if self.within is None:
            return find_in_order(self.owned_order, gid)
        return _find_within(self.within, gid)

    def _mark_agents(self, *slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the distinct owned slots of the three arrays ``slots``, ascending, an int32
        map over the owned slots with map[agents[k]] = k): a sub-domain's agents and
        their places, found by a gather, not a search. The map is one buffer, kept
        between calls (a fresh one would fault its pages in every call) and right only
        at the last call's agents (:meth:`places_of`). Local."""
        places = self.__dict__.get("_places")
        if places is None or places.shape[0] != self.n_owned:
            places = self._places = np.zeros(self.n_owned, dtype=np.int32)
        self._places_for = None  # (being rewritten)
        agents = kernel_loader.compiled().subsets.ascending_union(self.n_owned, *slots, places)
        self._places_for = agents
        return agents, places

    def places_of(self, agents: np.ndarray) -> np.ndarray | None:
        """The map of places when the last sub-domain made here is the one of this very
        ``agents`` array, else None. Local."""
        return self.__dict__["_places"] if self.__dict__.get("_places_for") is agents \
            else None

    @property
    def n_owned(self) -> int:
        """Number of agents this rank owns."""
        return int(self.gid.shape[0])

    def edge_weights(self) -> np.ndarray:
        """Weight of every edge in CSR order (materialised when uniform). Local."""
        if self.weights.shape[0] == 0:
            return np.full(int(self.indptr[-1]), self.uniform_weight)
        return self.weights

    def known_targets(self) -> np.ndarray:
        """What the halo plan knows of every edge's current target: its owned slot, or
        -2 for another rank's agent (int32, CSR order; the form of a rebuild's
        ``hint``). Local."""
        return np.where(self.indices < self.n_owned, self.indices, np.int32(-2))

    def rebuild_halo(self, target_gid: np.ndarray | None = None, mode: str | None = None,
                     hint: np.ndarray | None = None) -> None:
        """Rebuild the halo plan after the network changed. Collective.

        ``target_gid`` holds the new global id of every edge's target in CSR
        order (``indptr`` already describing the new rows); by default the
        current targets are used. Remaps ``indices`` to the new local slots,
        recomputes the interior and boundary rows and frees the old plan.
        The ghost count changes: columns with ghost slots (such as B1's
        sentiment) must be reallocated to ``n_owned + halo.n_ghost`` slots
        by the model that owns them. What the caller knows of the new targets
        saves searching them by id: ``hint`` (int32 per edge, taken over) gives
        each edge's owned slot, -2 for another rank's agent or -1 for unknown
        (:meth:`known_targets` for the edges that kept theirs); without it the
        targets are compared with the current ones. The owned agents are those
        of the current plan (this is not a repartition).
        """
        old = self.edge_targets() if target_gid is None or hint is None else None
        targets = old if target_gid is None else np.asarray(target_gid)
        if hint is None:
            # Edges whose target did not change keep what the plan knows of it (their
            # owned slot, or -2: another rank's agent, whose owner the old plan knows);
            # only new targets are searched among the owned ids and asked of the
            # directory (most of a large rank's edges are owned and unchanged).
            hint = self.known_targets()  # int32: 4 bytes an edge
            hint[targets != old] = -1
        del old
        directory = GhostDirectory(self.halo, fallback=self.directory)
        plan = HaloPlan(self.comm, self.gid, targets, directory, mode or self.halo.mode,
                        edge_local_hint=hint, find_owned=self.find_owned)
        self.halo.destroy()
        self.halo = plan
        self.indices = plan.edge_local
        self.interior_rows, self.boundary_rows = plan.split_rows(self.indptr)

    def subdomain(self, edges: np.ndarray, rows: np.ndarray | None = None
                  ) -> tuple[Domain, np.ndarray]:
        """The part of the network made of the local edges ``edges`` (CSR positions,
        ascending) and of the agents they touch. Collective.

        Returns (sub, agents): ``sub`` is a domain whose owned agents are this rank's
        agents at the ends of those edges (``agents``, their local indices here, in
        Hilbert order), each row with its kept edges in their order, with a halo plan
        of its own (point to point; the caller destroys ``sub.halo``). For measures over
        a sparse part of the network (the edges that carry an exposure): sums in edge
        order stay independent of the partition, and the work scales with the part,
        not with the whole. ``sub.n_total`` stays the number of agents of the economy
        (ids keep their range); ``sub.offset`` is not a position (-1), and ``sub.x``
        and ``sub.y`` are None (the measures on a part do not need positions; they are
        ``x[agents]`` and ``y[agents]`` here). ``rows``: each edge's row (local index
        of its source), when the caller knows them.
        """
        edges = np.asarray(edges, dtype=np.int64)
        n = self.n_owned
        rows = np.searchsorted(self.indptr, edges, side="right") - 1 if rows is None \
            else np.asarray(rows, dtype=np.int64)
        slots = self.indices[edges].astype(np.int64)
        owned = slots < n
        targets = np.empty(slots.shape[0], dtype=np.int64)
        targets[owned] = self.gid[slots[owned]]
        targets[~owned] = self.halo.ghost_gid[slots[~owned] - n]
        # The agents other ranks' kept edges point at: their owned slots, routed from
        # the kept edges' ghost targets (the halo plan knows where each ghost lives).
        ghosts = np.unique(slots[~owned])
        asked = self.halo.route_to_owners(ghosts).owned
        # The agents, ascending, marked among the owned slots (sorting them costs more),
        # with their places in this domain's map.
        agents, places = self._mark_agents(rows, slots[owned], asked)
        gid = self.gid[agents]
        # Targets owned here are found by their local index, not searched by id.
        hint = np.full(edges.shape[0], -2, dtype=np.int32)  # ghosts: other ranks' agents
        hint[owned] = places[slots[owned]]
        within = (self, agents)
        plan = HaloPlan(self.comm, gid, targets, GhostDirectory(self.halo, ghosts), "p2p",
                        edge_local_hint=hint,
                        find_owned=functools.partial(_find_within, within))
        sub_rows = places[rows]  # each edge's row in the sub-domain (ascending)
        indptr = np.zeros(agents.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(sub_rows, minlength=agents.shape[0]), out=indptr[1:])
        # Rows with an edge to a ghost: counted per row (HaloPlan.split_rows's answer,
        # without a pass of its own over the rows).
        to_ghost = np.bincount(sub_rows[plan.edge_local >= agents.shape[0]],
                               minlength=agents.shape[0])
        interior, boundary = np.flatnonzero(to_ghost == 0), np.flatnonzero(to_ghost)
        sub = Domain(comm=self.comm, n_total=self.n_total, offset=-1, cuts=self.cuts,
                     gid=gid, x=None, y=None, indptr=indptr,
                     indices=plan.edge_local,
                     weights=self.weights[edges] if self.weights.shape[0] else self.weights,
                     uniform_weight=self.uniform_weight, halo=plan, interior_rows=interior,
                     boundary_rows=boundary, within=within)
        return sub, agents

    def edge_targets(self) -> np.ndarray:
        """Global id of every edge's target, in CSR order. Local."""
        slot_gid = np.concatenate((self.gid, self.halo.ghost_gid))
        return slot_gid[self.indices]


def build_domain(comm, scenario, timers: Timers) -> Domain:
    """Positions, Hilbert partition, k-NN network, rewiring and halo plan. Collective."""
    return_freed_memory()
    ks = kernel_loader.compiled()  # initialisation always uses the compiled kernels
    n_total = scenario.agents.n
    seed = scenario.run.seed
    lo, hi = comm.rank * n_total // comm.size, (comm.rank + 1) * n_total // comm.size
    with timers("init.positions"):
        xy = b1_model.initial_positions(seed, lo, hi)
        x, y = np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1])
        del xy
        gid = np.arange(lo, hi, dtype=np.int64)
        xmin, xmax = allreduce_min_max(comm, x.min(initial=np.inf), x.max(initial=-np.inf))
        ymin, ymax = allreduce_min_max(comm, y.min(initial=np.inf), y.max(initial=-np.inf))
        box = (xmin, ymin, xmax, ymax)
        key = np.empty(gid.shape[0], dtype=np.uint64)
        ks.hilbert.hilbert_keys(x, y, xmin, ymin, xmax, ymax, scenario.engine.hilbert_bits, key)
    with timers("init.sort"):
        part = hilbert_partition(comm, key, gid, {"x": x, "y": y})
        del key, gid, x, y, part["key"]  # keys are recomputed from positions when needed
        gid, x, y = part["gid"], part["x"], part["y"]
    with timers("init.knn"):
        k = scenario.network.k
        neighbours, known_local = distributed_knn(comm, x, y, gid, k, box, ks.knn.knn_grid)
        rewire_small_world(neighbours, gid, n_total, scenario.network.p, seed, ks.rng.uniform,
                           known_local)
    with timers("init.halo"):
        directory = Directory(comm, gid, n_total)
        halo = HaloPlan(comm, gid, neighbours.reshape(-1), directory, scenario.engine.halo,
                        edge_local_hint=known_local.reshape(-1))
        del known_local, directory
        # Weights are allocated only once the id table is no longer needed.
        del neighbours
        net = LocalNetwork.uniform_knn(gid.shape[0], k)
        interior, boundary = halo.split_rows(net.indptr)
    return Domain(comm=comm, n_total=n_total, offset=part["offset"], cuts=part["cuts"],
                  gid=gid, x=x, y=y, indptr=net.indptr, indices=halo.edge_local,
                  weights=net.weight, uniform_weight=net.uniform_weight, halo=halo,
                  interior_rows=interior,
                  boundary_rows=boundary)


def snapshot_ticks(ticks: int, every: int) -> list[int]:
    """Ticks at which agent snapshots are written: 0, every, 2*every, ..., and the last."""
    out = list(range(0, ticks + 1, every)) if every > 0 else [0]
    if out[-1] != ticks:
        out.append(ticks)
    return out


@dataclass
class RunResult:
    """What a run produced: per-tick records and timings (identical on every rank)."""

    records: dict
    init_s: float
    run_s: float
    timers: dict
    n_ghost_max: int = 0


class Simulation:
    """A scenario on ``comm``: ``Simulation(comm, scenario).run(writer)``. Collective."""

    def __init__(self, comm, scenario, quiet=True):
        self.comm = comm
        self.scenario = scenario
        self.quiet = quiet
        self.timers = Timers()
        barrier(comm)
        t0 = wtime()
        self.domain = build_domain(comm, scenario, self.timers)
        kernels = kernel_loader.load(scenario.engine.backend)
        if scenario.run.model == "defi":
            self.model = defi_model.Defi(self.domain, scenario, kernels,
                                         overlap=scenario.engine.overlap)
        else:
            self.model = b1_model.B1(self.domain, scenario.model, kernels, scenario.run.seed,
                                     overlap=scenario.engine.overlap)
        barrier(comm)
        self.init_s = wtime() - t0
        reuse_freed_memory()  # the ticks' temporaries reuse heap pages (tokensim_hpc.memory)

    def run(self, writer=None) -> RunResult:
        """Run every tick; write snapshots and time series if ``writer`` is given. Collective."""
        sc = self.scenario
        ticks = sc.run.ticks
        records = {}
        snaps = set(snapshot_ticks(ticks, sc.output.every)) if sc.output.snapshots else set()
        progress = Progress(ticks, sc.agents.n, sc.engine.progress_every,
                            enabled=not self.quiet and self.comm.rank == 0)
        if writer is not None:
            writer.write_static(self.domain, self.model.static_columns())
            if 0 in snaps:
                writer.write_snapshot(0, self.model.snapshot(), self.domain)
        barrier(self.comm)
        t0 = wtime()
        for tick in range(1, ticks + 1):
            rec = self.model.step(tick, self.timers)
            for name, value in rec.items():
                if name not in records:
                    records[name] = np.empty((ticks,) + np.shape(value))
                records[name][tick - 1] = value
            if writer is not None and tick in snaps:
                with self.timers("output"):
                    writer.write_snapshot(tick, self.model.snapshot(), self.domain)
            progress.update(tick)
        barrier(self.comm)
        run_s = wtime() - t0
        if writer is not None:
            writer.write_timeseries(records)
        return RunResult(records=records, init_s=self.init_s, run_s=run_s,
                         timers=dict(self.timers.seconds),
                         n_ghost_max=allreduce_max_int(self.comm, self.domain.halo.n_ghost))

    def close(self) -> None:
        """Free MPI and PETSc resources held by the domain and the model. Collective."""
        close = getattr(self.model, "close", None)
        if close is not None:
            close()
        self.domain.halo.destroy()
