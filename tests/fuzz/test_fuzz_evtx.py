"""EVTX files with random damage: records and failure reports that name the file, and no record lost without a word.

tests/collect/windows/test_evtx.py damages files on purpose, one kind of damage at a time;
here the damage is random, over every one-chunk file of the datasets.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given

from secmon.bench.fuzz.damage import damage_bytes
from secmon.bench.fuzz.draw import Draw
from secmon.bench.fuzz.targets import check_evtx
from secmon.collect.sources.evtx import read_evtx
from tests.fuzz.drawing import cases, examples

EVTX = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "evtx"
FILE_AND_CHUNK_HEADERS = 4096 + 512
ONE_CHUNK = sorted(path for path in EVTX.rglob("*.evtx") if path.stat().st_size <= 4096 + 65536)
SEEDS = [path.read_bytes() for path in ONE_CHUNK[:12]]


@pytest.fixture(scope="module")
def damaged_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("evtx-fuzz") / "damaged.evtx"


@pytest.fixture(scope="module")
def records_of(damaged_file: Path) -> list[int]:
    """How many records each undamaged file holds."""
    counts = []
    for seed in SEEDS:
        damaged_file.write_bytes(seed)
        counts.append(sum(1 for _ in read_evtx(damaged_file)))
    return counts


def damaged_seed(d: Draw) -> tuple[bytes, int]:
    """One of the files with a few bytes damaged (mostly past its file and first chunk headers), and which."""
    which = d.integer(0, len(SEEDS) - 1)
    return damage_bytes(d, SEEDS[which], SEEDS, keep=FILE_AND_CHUNK_HEADERS), which


def test_the_seeds_are_there() -> None:
    assert len(SEEDS) == 12


@examples(120)
@given(damaged=cases(damaged_seed))
def test_a_damaged_file_yields_storable_records_and_reports_what_it_loses(
    damaged_file: Path, records_of: list[int], damaged: tuple[bytes, int]
) -> None:
    data, which = damaged
    damaged_file.write_bytes(data)
    check_evtx(damaged_file, records_before=records_of[which])
