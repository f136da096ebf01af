"""`--plot FILE.png`: the latency distribution of every backend, one panel per recipe and batch size, with
the median (p50) and p99 marked. matplotlib's Agg canvas draws it without a display."""

from __future__ import annotations

from pathlib import Path

from converter.bench.report import BenchReport
from converter.errors import ToolNotFound


def write_plot(report: BenchReport, path: Path) -> Path:
    """Draw the report's latencies into a PNG at `path` (written atomically)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ToolNotFound("--plot needs matplotlib", hint="pip install 'npuconv[bench]' (or: pip install matplotlib)") from None
    from converter.artifacts import atomic_path

    groups: dict[tuple[str, int], list] = {}
    for r in report.results:
        groups.setdefault((r.recipe, r.batch), []).append(r)
    rows = max(len(g) for g in groups.values()) if groups else 1
    figure = Figure(figsize=(9, 0.9 * sum(len(g) for g in groups.values()) + 1.2 * len(groups) + 0.5))
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(groups) or 1, 1, squeeze=False)[:, 0]
    for ax, ((recipe, batch), results) in zip(axes, groups.items()):
        data = [r.times_ms for r in results]
        positions = list(range(1, len(results) + 1))
        ax.violinplot(data, positions=positions, orientation="horizontal", showextrema=True, widths=0.8)
        ax.scatter([r.latency_ms.median for r in results], positions, marker="|", s=300, color="black", zorder=3,
                   label="p50")
        ax.scatter([r.latency_ms.p99 for r in results], positions, marker="|", s=300, color="crimson", zorder=3,
                   label="p99")
        for y, r in zip(positions, results):
            ax.annotate(f"p50 {r.latency_ms.median:.3g}  p99 {r.latency_ms.p99:.3g} ms", (r.latency_ms.p99, y),
                        xytext=(6, 6), textcoords="offset points", fontsize=8)
        ax.set_yticks(positions, [r.backend for r in results], fontsize=8)
        ax.set_ylim(0.4, max(rows, len(results)) + 0.6)
        low, high = min(r.latency_ms.min for r in results), max(r.latency_ms.max for r in results)
        if low > 0 and high / low > 20:  # a long tail would squeeze the bulk into one corner
            ax.set_xscale("log")
        ax.set_xlabel("latency (ms)")
        ax.set_title(f"{recipe}, batch {batch}", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    return path
