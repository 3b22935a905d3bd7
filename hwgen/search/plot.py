"""The search's Pareto front as a PNG (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path


def plot_pareto(result, board, budget: dict, path: str | Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    feas = result.results
    best = result.best
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, res, label in ((axes[0], "dsp", "DSP"), (axes[1], "bram18k", "BRAM_18K")):
        ax.scatter([r.resources[res] for r in feas], [r.latency_ms for r in feas], s=8, c="0.75",
                   label=f"evaluated designs that fit ({len(feas)})")
        fr = _front2d(feas, res)
        ax.step([r.resources[res] for r in fr], [r.latency_ms for r in fr], "o-", where="post", ms=4, lw=1,
                c="tab:blue", label=f"Pareto front, latency vs {label} ({len(fr)})")
        ax.plot([best.resources[res]], [best.latency_ms], "*", ms=14, c="tab:red", label="chosen design")
        have = getattr(board.resources, res)
        if have:
            ax.axvline(have * budget.get(res, 1.0), ls="--", c="tab:red", lw=0.8, label="budget")
        ax.set_xlabel(f"{label} used")
        ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("latency per image (ms, log)")
    axes[0].legend(fontsize=7, loc="upper right")
    fig.suptitle(title or f"design space on {board.name}: latency vs DSP and BRAM")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _front2d(results, res: str) -> list:
    """Designs no other beats on both latency and this resource, by increasing resource."""
    out, best = [], float("inf")
    for r in sorted(results, key=lambda r: (r.resources[res], r.latency_ms)):
        if r.latency_ms < best:
            out.append(r)
            best = r.latency_ms
    return out
