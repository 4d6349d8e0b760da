"""Per-chunk metrics: metrics.csv always (one row per chunk and seed), TensorBoard when available."""

from __future__ import annotations

import csv
import os


class MetricsLog:
    def __init__(self, run_dir: str, columns: list[str], tensorboard: bool):
        self.path = os.path.join(run_dir, "metrics.csv")
        self.columns = columns
        if os.path.exists(self.path):  # a resumed run keeps the columns it was started with
            with open(self.path, newline="") as f:
                self.columns = next(csv.reader(f), None) or columns
        else:
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(columns)
        self._tb = None
        if tensorboard:
            try:
                from tensorboardX import SummaryWriter
            except ImportError:
                pass
            else:
                self._tb = SummaryWriter(os.path.join(run_dir, "tensorboard"))

    def truncate_after(self, chunk: int) -> None:
        """Drop rows of chunks after `chunk` (written by a run killed before its next checkpoint)."""
        with open(self.path, newline="") as f:
            rows = list(csv.DictReader(f))
        with open(self.path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.columns)
            w.writeheader()
            w.writerows(r for r in rows if int(r["chunk"]) <= chunk)

    def write(self, rows: list[dict], step: int) -> None:
        with open(self.path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore")
            w.writerows(rows)
        if self._tb is not None:
            for row in rows:
                for k, v in row.items():
                    if k not in ("chunk", "seed", "env_steps"):
                        self._tb.add_scalar(f"seed{row['seed']}/{k}", v, step)
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()

