"""The shared real datasets (logs, EVTX, captures, Sigma rules), beside the checkout."""

from __future__ import annotations

from pathlib import Path

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
