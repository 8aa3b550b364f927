"""``secmon bench fuzz``: every parser is run and reported, and the same seed draws the same inputs."""

from __future__ import annotations

from random import Random

from typer.testing import CliRunner

from secmon.bench.fuzz import TARGETS
from secmon.bench.fuzz.draw import RandomDraw
from secmon.cli.bench import app


def test_every_parser_takes_the_inputs_asked_for_without_a_failure() -> None:
    result = CliRunner().invoke(app, ["fuzz", "--inputs", "300"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for name in TARGETS:
        row = next(line.split("\t") for line in lines if line.startswith(f"{name}\t"))
        assert row[1] == "300" and row[-1] == "0", row  # inputs, failures


def test_the_same_seed_draws_the_same_inputs_so_that_a_failure_can_be_replayed() -> None:
    def drawn(seed: int) -> list[str]:
        draw = RandomDraw(Random(seed))
        target = TARGETS["syslog"](draw)
        return [target.show(target.draw(draw)) for _ in range(100)]

    assert drawn(7) == drawn(7)
    assert drawn(7) != drawn(8)


def test_an_unknown_parser_is_refused_with_the_known_ones() -> None:
    result = CliRunner().invoke(app, ["fuzz", "--parser", "nosuch"])
    assert result.exit_code == 2
    assert "no parser nosuch; known: syslog, programs" in " ".join(result.output.split())
