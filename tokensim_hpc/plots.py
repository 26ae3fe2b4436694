"""Pictures of a run file: market time series and the spatial sentiment field.

``python -m tokensim_hpc plot RUN.h5 [-o RUN.png]``. Serial (no MPI); uses
matplotlib's file-only Agg backend, so it works on login nodes without a
display.
"""

from __future__ import annotations

from .io.reader import open_run


def plot_run(path: str, out: str, snapshot: int = -1, max_points: int = 200_000) -> str:
    """Write a PNG: market time series (B1: price, net flow, mean sentiment, wealth;
    defi: pool prices against the oracle, orders, sentiment and wealth by type) and
    sentiment over space.

    Parameters
    ----------
    path : str
        A completed run file.
    out : str
        PNG file to write.
    snapshot : int
        Which agent snapshot to map (default: the last).
    max_points : int
        Agents drawn in the map at most (an evenly spaced subset of the
        Hilbert order, so the picture of 10^7 agents stays light).

    Returns
    -------
    str
        ``out``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open_run(path) as run:
        model = str(run.attrs.get("model", "b1"))
        ts = run.timeseries() if model == "b1" else None
        frames = {name: run.series(name) for name in
                  ("pool_price", "oracle_price", "orders", "sentiment_by_type",
                   "wealth_by_type", "liquidations", "credit_outstanding", "credit_lent",
                   "credit_repaid", "credit_written_off")} if model == "defi" else {}
        if model == "defi":
            frames["scalars"] = run.timeseries()
        snap = run.snapshot(snapshot) if len(run.snapshot_ticks) else None
        name = run.attrs.get("scenario_name", "")
        n_agents = int(run.attrs.get("n_agents", 0))
        ranks = int(run.attrs.get("ranks", 0))
    rows = 4 if model == "defi" else 2
    fig = plt.figure(figsize=(14, 3.5 * rows), constrained_layout=True)
    grid = fig.add_gridspec(rows, 3)
    axes = [fig.add_subplot(grid[k // 2, k % 2]) for k in range(2 * rows)]
    if model == "defi":
        _defi_panels(axes, frames)
    else:
        panels = [("price", "pool price P [cash/token]"),
                  ("net_flow", "net order flow Q [cash]"),
                  ("mean_sentiment", "mean sentiment"), ("total_wealth", "total wealth [cash]")]
        for ax, (column, label) in zip(axes, panels, strict=True):
            ax.plot(ts.index, ts[column], lw=1.2)
            ax.set_ylabel(label)
    for ax in axes:
        ax.set_xlabel("tick")
        ax.grid(alpha=0.3)
    ax = fig.add_subplot(grid[:, 2])
    if snap is not None:
        step = max(1, snap["x"].shape[0] // max_points)
        sc = ax.scatter(snap["x"][::step], snap["y"][::step], c=snap["sentiment"][::step],
                        s=max(0.2, 2e4 / max(1, snap["x"].shape[0] // step)), cmap="coolwarm",
                        vmin=-1, vmax=1, linewidths=0)
        fig.colorbar(sc, ax=ax, label="sentiment s_i")
        ax.set_title(f"sentiment at tick {snap['tick']}")
        ax.set_aspect("equal")
        ax.set_xlabel("x")
        ax.set_ylabel("y")
    else:
        ax.set_axis_off()
        ax.set_title("no agent snapshots in this file")
    fig.suptitle(f"{name}: {n_agents:,} agents, written by {ranks} ranks")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _defi_panels(axes, frames) -> None:
    """The economy's markets: prices against the oracle, orders, sentiment, wealth."""
    price, oracle = frames["pool_price"], frames["oracle_price"]
    for pool in price.columns:
        line, = axes[0].plot(price.index, price[pool] / price[pool].iloc[0], lw=1.0,
                             label=pool)
        axes[0].plot(oracle.index, oracle[pool] / price[pool].iloc[0], lw=0.8, ls=":",
                     color=line.get_color())
    axes[0].set_ylabel("price / first price (dotted: oracle)")
    axes[0].legend(fontsize=7)
    for pool in frames["orders"].columns:
        axes[1].plot(frames["orders"].index, frames["orders"][pool], lw=1.0, label=pool)
    axes[1].set_ylabel("orders per tick")
    for kind in frames["sentiment_by_type"].columns:
        axes[2].plot(frames["sentiment_by_type"].index, frames["sentiment_by_type"][kind],
                     lw=1.0, label=kind)
    axes[2].set_ylabel("mean sentiment by type")
    axes[2].legend(fontsize=7)
    wealth = frames["wealth_by_type"]
    for kind in wealth.columns:
        axes[3].plot(wealth.index, wealth[kind] / wealth[kind].iloc[0], lw=1.0, label=kind)
    axes[3].set_ylabel("wealth / first (by type)")
    axes[3].legend(fontsize=7)
    scalars = frames["scalars"]
    axes[4].plot(scalars.index, scalars["systemic_risk"], lw=1.2, label="R_sys")
    axes[4].plot(scalars.index, scalars["mean_correlation"], lw=1.0,
                 label="mean return correlation of ties")
    axes[4].set_ylabel("systemic risk (paper 6.1)")
    axes[4].legend(fontsize=7)
    axes[5].plot(frames["liquidations"].index, frames["liquidations"].sum(axis=1), lw=1.0,
                 label="liquidations per tick")
    axes[5].plot(scalars.index, scalars["edge_strength"] * 100.0, lw=1.0,
                 label="mean tie strength x 100")
    axes[5].set_ylabel("liquidations; tie strength")
    axes[5].legend(fontsize=7)
    # Trade credit, the exposure network: its flows, and its risk at each sample.
    for name, label in (("credit_outstanding", "owed"), ("credit_lent", "lent per tick"),
                        ("credit_repaid", "repaid per tick"),
                        ("credit_written_off", "written off per tick")):
        series = frames[name].sum(axis=1)
        axes[6].plot(series.index, series, lw=1.0, label=label)
    axes[6].set_ylabel("trade credit [quote]")
    axes[6].legend(fontsize=7)
    axes[7].plot(scalars.index, scalars["debtrank"], lw=1.2, label="DebtRank of the stressed set")
    axes[7].set_ylabel("DebtRank R")
    twin = axes[7].twinx()
    twin.plot(scalars.index, scalars["contagion_expected_defaults"], lw=1.0, color="tab:red",
              label="expected contagion defaults")
    twin.set_ylabel("expected defaults")
    lines = axes[7].get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    axes[7].legend(lines[0] + more[0], lines[1] + more[1], fontsize=7)
