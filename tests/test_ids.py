"""Document ids: deterministic from their parts, or sequential within one run."""

from __future__ import annotations

import os

from secmon.ids import document_id, sequential_id


def test_the_same_parts_give_the_same_id_and_different_parts_a_different_one() -> None:
    assert document_id("file", 7, 120) == document_id("file", 7, 120)
    assert document_id("file", 7, 120) != document_id("file", 71, 20)  # parts are length-prefixed


def test_sequential_ids_of_one_run_are_unique_share_their_prefix_and_differ_from_another_run() -> None:
    run, other = os.urandom(9), os.urandom(9)
    ids = [sequential_id(run, n) for n in range(1, 100_001)]
    assert len(set(ids)) == len(ids)
    assert {len(i) for i in ids} == {20}
    assert len({i[:12] for i in ids}) == 1  # the run's 9 bytes are the first 12 characters
    assert not set(ids) & {sequential_id(other, n) for n in range(1, 100_001)}
