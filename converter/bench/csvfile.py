"""`--csv FILE`: one row per recipe x batch x backend."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from converter.artifacts import write_bytes_atomic
from converter.bench.report import BenchReport
from converter.bench.stats import LatencyStats

COLUMNS = ("recipe", "batch", "backend", "iterations", "warmup", *(f"{k}_ms" for k in LatencyStats.__dataclass_fields__),
           "throughput", "cold_start_ms", "peak_rss_mb", "ratio_to_baseline", "baseline", "flops", "gflops_per_s",
           "timed_region")


def csv_text(report: BenchReport) -> str:
    """The report's results as CSV text (header first)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in report.results:
        stats = r.latency_ms.to_json()
        row = {**r.to_json(), **{f"{k}_ms": v for k, v in stats.items()}}
        writer.writerow(["" if row.get(c) is None else row[c] for c in COLUMNS])
    return buffer.getvalue()


def write_csv(report: BenchReport, path: Path) -> Path:
    """Write the CSV atomically."""
    write_bytes_atomic(Path(path), csv_text(report).encode())
    return Path(path)
