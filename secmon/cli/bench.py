"""``secmon bench``: measured numbers, each beside a peer run on the same data in the same run."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from secmon.cli.context import console, ensure_cluster, load, run_async

if TYPE_CHECKING:
    from secmon.bench.api import LoadReport

app = typer.Typer(help="Benchmarks, each beside a peer measured in the same run.", no_args_is_help=True)


@app.command()
def ingest(
    ctx: typer.Context,
    events: Annotated[int, typer.Option("--events", "-n", min=1, help="Synthetic events to write.")] = 100_000,
    rounds: Annotated[int, typer.Option(min=1, help="Measured rounds; the median is reported.")] = 3,
) -> None:
    """Bulk-index synthetic ECS events with secmon's writer and with parallel_bulk; print events/s and MB/s."""
    from secmon.bench.ingest import bench_ingest

    settings = load(ctx)
    ensure_cluster(settings)
    with console.status(f"Writing {events:,} events, {rounds + 1} rounds each for secmon and parallel_bulk …"):
        results = asyncio.run(bench_ingest(settings, events, rounds))
    table = Table(
        "writer",
        "events",
        "stored",
        "seconds",
        "events/s",
        "MB/s",
        title=f"secmon bench ingest (median of {rounds} rounds)",
    )
    for r in results:
        table.add_row(
            r.name,
            f"{r.events:,}",
            f"{r.stored:,}",
            f"{r.seconds:.2f}",
            f"{r.events_per_second:,.0f}",
            f"{r.megabytes_per_second:.1f}",
        )
    console.print(table)
    ours, peer = results
    console.print(f"ratio secmon / parallel_bulk: [bold]{ours.events_per_second / peer.events_per_second:.2f}×[/]")


@app.command()
def collect(
    ctx: typer.Context,
    messages: Annotated[int, typer.Option("--messages", "-n", min=1, help="Syslog lines to send to each.")] = 100_000,
    rate: Annotated[
        float | None, typer.Option(min=1, help="Lines per second to send; default: as fast as they are taken.")
    ] = None,
) -> None:
    """Send the same syslog lines over TCP to secmon and to rsyslog with omelasticsearch; print events/s stored."""
    from rich.markup import escape

    from secmon.bench.collect import bench_collect, cpu_comparison

    settings = load(ctx)
    ensure_cluster(settings)
    pace = f"at {rate:,.0f}/s" if rate else "as fast as taken"
    with console.status(f"Sending {messages:,} syslog lines {pace} to secmon, then to rsyslog …"):
        report = asyncio.run(bench_collect(settings, messages, rate))
    table = Table(
        "collector",
        "lines sent",
        "stored",
        "seconds",
        "events/s",
        "CPU s",
        "CPU µs/event",
        title=f"secmon bench collect: TCP syslog into Elasticsearch, {pace}",
    )
    results = [r for r in (report.secmon, report.rsyslog) if r is not None]
    for r in results:
        table.add_row(
            r.name,
            f"{r.events:,}",
            f"{r.stored:,}",
            f"{r.seconds:.2f}",
            f"{r.events_per_second:,.0f}",
            f"{r.cpu_seconds:.2f}",
            f"{r.cpu_us_per_event:,.1f}",
        )
    console.print(table)
    for r in results:
        console.print(f"[bold]{r.name}[/]: {escape(r.setup)}", highlight=False)
    if report.rsyslog is None:
        # Escaped: rsyslog's own messages carry [brackets] that rich would read as markup.
        console.print(f"[yellow]rsyslog not measured:[/] {escape(report.rsyslog_problem or '')}", highlight=False)
        return
    ratio = report.secmon.events_per_second / report.rsyslog.events_per_second
    console.print(f"ratio secmon / rsyslog: [bold]{ratio:.2f}×[/] events/s, {cpu_comparison(report)}")


@app.command()
def detect(  # noqa: PLR0917 - typer maps each parameter to a command-line option
    paths: Annotated[
        list[Path], typer.Argument(help="EVTX, JSON-lines or log files, or folders of them.", exists=True)
    ],
    rules: Annotated[list[Path], typer.Option("--rules", "-r", help="Sigma rule folders or files.", exists=True)],
    repeat: Annotated[int, typer.Option(min=1, help="Passes over the events; the median is reported.")] = 5,
    corpus_repeat: Annotated[
        int, typer.Option(min=1, help="Hunt N copies of the files (a large corpus built from small samples).")
    ] = 1,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", min=1, help="Processes of the whole-hunt row; default: the cores.")
    ] = None,
    one_file_mb: Annotated[
        int | None,
        typer.Option(min=1, help="Hunt one EVTX file of this many MB made of the files' chunks, instead of them."),
    ] = None,
) -> None:
    """Match events against Sigma rules on one core, then hunt the files on all: events/s, rules, peak memory.

    Zircolite, Chainsaw and Hayabusa on the same files: benchmarks/peers in secmon's source tree.
    """
    import tempfile

    from secmon.bench.detect import bench_detect, repeat_corpus
    from secmon.bench.large_evtx import write_large_evtx
    from secmon.config import default_cache_dir
    from secmon.offline import input_files
    from secmon.offline.parallel import default_jobs

    jobs = jobs or default_jobs()
    with tempfile.TemporaryDirectory(prefix="secmon-corpus-") as folder:
        if corpus_repeat > 1:
            with console.status(f"Copying the files {corpus_repeat}× …"):
                paths = repeat_corpus(paths, corpus_repeat, Path(folder))
        if one_file_mb:
            large = Path(folder) / "large.evtx"
            with console.status(f"Writing one {one_file_mb:,} MB EVTX file of their chunks …"):
                evtx_files = [path for path in input_files(paths) if path.suffix.lower() == ".evtx"]
                write_large_evtx(evtx_files, large, one_file_mb * 1024 * 1024)
            paths = [large]
        with console.status(f"Loading rules, reading events, matching {repeat}×, hunting on {jobs} processes …"):
            result = bench_detect(rules, paths, repeat, default_cache_dir() / "rule-cache", jobs)
    table = Table("engine", "events", "rules loaded", "matches", "seconds", "events/s", title="secmon bench detect")
    table.add_row(
        "secmon (matching only)",
        f"{result.events:,}",
        f"{result.rules_loaded:,}",
        f"{result.matches:,}",
        f"{result.match_seconds:.3f}",
        f"{result.events_per_second:,.0f}",
    )
    table.add_row(
        "secmon (read + parse + match)",
        f"{result.events:,}",
        f"{result.rules_loaded:,}",
        f"{result.matches:,}",
        f"{result.read_seconds + result.match_seconds:.3f}",
        f"{result.end_to_end_events_per_second:,.0f}",
    )
    if result.jobs > 1:
        table.add_row(
            f"secmon detect --jobs {result.jobs} (read + parse + match)",
            f"{result.events:,}",
            f"{result.rules_loaded:,}",
            f"{result.parallel_findings:,}",
            f"{result.parallel_seconds:.3f}",
            f"{result.parallel_events_per_second:,.0f}",
        )
    console.print(table)
    console.print(
        f"rules skipped: {result.rules_skipped:,}; rule load {result.load_seconds:.2f}s"
        f"{' (cache)' if result.load_cached else ' (parsed, cache was cold)'}; peak memory {result.peak_rss_mb:,.0f} MB"
    )


@app.command("import")
def import_(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="EVTX files, or folders of them.", exists=True)],
    corpus_repeat: Annotated[
        int, typer.Option(min=1, help="Import N copies of the files (a large corpus built from small samples).")
    ] = 1,
    jobs: Annotated[
        list[int] | None,
        typer.Option("--jobs", "-j", min=1, help="Workers of a row, one row each; default: 1 and the cores."),
    ] = None,
) -> None:
    """secmon import evtx on 1 worker and on all cores, beside the raw records bulk-indexed with parallel_bulk."""
    import tempfile

    from secmon.bench.detect import repeat_corpus
    from secmon.bench.imports import bench_import
    from secmon.offline.parallel import default_jobs

    settings = load(ctx)
    ensure_cluster(settings)
    rows = jobs or sorted({1, default_jobs()})
    with tempfile.TemporaryDirectory(prefix="secmon-corpus-") as folder:
        if corpus_repeat > 1:
            with console.status(f"Copying the files {corpus_repeat}× …"):
                paths = repeat_corpus(paths, corpus_repeat, Path(folder))
        with console.status("Importing, once per row …"):
            results = asyncio.run(bench_import(settings, paths, rows))
    table = Table(
        "importer",
        "events",
        "stored",
        "alerts",
        "seconds",
        "events/s",
        "CPU s",
        "CPU µs/event",
        title="secmon bench import",
    )
    for r in results:
        table.add_row(
            r.name,
            f"{r.events:,}",
            f"{r.stored:,}",
            "—" if r.alerts is None else f"{r.alerts:,}",
            f"{r.seconds:.2f}",
            f"{r.events_per_second:,.0f}",
            f"{r.cpu_seconds:.2f}",
            f"{r.cpu_us_per_event:.0f}",
        )
    console.print(table)
    peer = results[-1]
    for r in results[:-1]:
        console.print(f"{r.name} / raw bulk: [bold]{r.events_per_second / peer.events_per_second:.2f}×[/] events/s")
    console.print("CPU: this process and its workers; Elasticsearch's own CPU is not counted.")


@app.command()
def latency(
    ctx: typer.Context,
    rate: Annotated[float, typer.Option(min=1, help="Probe lines per second.")] = 100.0,
    seconds: Annotated[float, typer.Option(min=1, help="How long to send.")] = 20.0,
) -> None:
    """Time from a syslog line entering secmon to its alert being searchable: p50 and p99 at a steady rate."""
    from secmon.bench.latency import bench_latency

    settings = load(ctx)
    ensure_cluster(settings)
    with console.status(f"Sending {rate:g} probe lines/s for {seconds:g}s and watching for their alerts …"):
        result = asyncio.run(bench_latency(settings, rate, seconds))
    table = Table("lines sent", "alerts seen", "p50 ms", "p90 ms", "p99 ms", "max ms", title="secmon bench latency")
    table.add_row(
        f"{result.sent:,}",
        f"{result.seen:,}",
        f"{result.median * 1000:.0f}",
        f"{result.percentile(90) * 1000:.0f}",
        f"{result.percentile(99) * 1000:.0f}",
        f"{max(result.latencies, default=float('nan')) * 1000:.0f}",
    )
    console.print(table)
    console.print("[dim]syslog line over TCP → parse → detect → disk buffer → bulk write → alert searchable[/]")


@app.command()
def pcap(
    file: Annotated[
        Path | None, typer.Argument(help="pcap or pcapng file; default: one built from the datasets' captures.")
    ] = None,
    packets: Annotated[
        int, typer.Option("--packets", "-n", min=1, help="Frames in the capture built when no FILE is given.")
    ] = 200_000,
    repeat: Annotated[int, typer.Option(min=1, help="Timed runs of each; the median is reported.")] = 3,
) -> None:
    """Decode a capture into flow, DNS, HTTP and TLS events: packets/s and events/s, beside Suricata on one thread."""
    import tempfile

    from rich.markup import escape

    from secmon.bench.pcap import bench_pcap, build_bench_capture

    with tempfile.TemporaryDirectory(prefix="secmon-bench-pcap-") as tmp:
        if file is None:
            with console.status(f"Building a capture of {packets:,} packets from the datasets …"):
                built = build_bench_capture(Path(tmp) / "bench.pcap", packets)
            console.print(f"[bold]capture[/]: {escape(built.describe())}", highlight=False)
            file = built.path
        with console.status(f"Decoding {file.name} {repeat}× with secmon, then {repeat + 1}× with Suricata …"):
            result = bench_pcap(file, repeat)
    ours, theirs = result.secmon, result.suricata
    table = Table(
        "decoder", "packets", "events", "seconds", "packets/s", "events/s", title=f"secmon bench pcap: {file}"
    )
    table.add_row(
        "secmon (read + decode)",
        f"{ours.packets:,}",
        f"{ours.total_events:,}",
        f"{ours.read_seconds:.3f}",
        f"{ours.packets_per_second:,.0f}",
        f"{ours.events_per_second:,.0f}",
    )
    table.add_row(
        "secmon (decode, frames in memory)",
        f"{ours.packets:,}",
        f"{ours.total_events:,}",
        f"{ours.process_seconds:.3f}",
        f"{ours.process_packets_per_second:,.0f}",
        f"{ours.process_events_per_second:,.0f}",
    )
    if theirs is not None:
        table.add_row(
            f"Suricata {theirs.version} (process)",
            f"{theirs.packets:,}",
            f"{theirs.total_events:,}",
            f"{theirs.seconds:.3f}",
            f"{theirs.packets_per_second:,.0f}",
            f"{theirs.events_per_second:,.0f}",
        )
        working = theirs.working_seconds
        if working is not None:
            table.add_row(
                "Suricata, less start-up",
                f"{theirs.packets:,}",
                f"{theirs.total_events:,}",
                f"{working:.3f}",
                f"{theirs.packets / working:,.0f}",
                f"{theirs.total_events / working:,.0f}",
            )
    console.print(table)
    console.print(f"secmon events: {', '.join(f'{k} {v:,}' for k, v in sorted(ours.events.items()))}", highlight=False)
    for note in result.notes:
        console.print(f"[yellow]{escape(note)}[/]", highlight=False)
    if theirs is None:
        console.print(f"[yellow]Suricata not measured:[/] {escape(result.suricata_problem or '')}", highlight=False)
        return
    console.print(
        f"Suricata events: {', '.join(f'{k} {v:,}' for k, v in sorted(theirs.events.items()))}", highlight=False
    )
    if theirs.startup_seconds is not None:
        console.print(f"Suricata start-up and shut-down (one-packet capture): {theirs.startup_seconds:.3f}s")
    console.print(
        f"Suricata CPU time (user + system): {theirs.cpu_seconds:.3f}s for {theirs.seconds:.3f}s of wall time"
    )
    console.print(f"[dim]Suricata: {escape(theirs.command)}, eve.json with flow, dns, http, tls[/]", highlight=False)
    if result.ratio is not None:
        console.print(f"packets/s, secmon (read + decode) / Suricata (process): [bold]{result.ratio:.2f}×[/]")
    if result.working_ratio is not None:
        console.print(
            f"packets/s, secmon (read + decode) / Suricata less start-up: [bold]{result.working_ratio:.2f}×[/]"
        )


@app.command()
def api(
    ctx: typer.Context,
    alerts: Annotated[
        int, typer.Option("--alerts", "-n", min=100, help="Alerts stored under <prefix>-benchapi (reused when there).")
    ] = 1_000_000,
    rate: Annotated[
        float, typer.Option(min=1, help="Requests per second, open loop, to each of API and Elasticsearch.")
    ] = 50.0,
    seconds: Annotated[float, typer.Option(min=1, help="How long to send, to each.")] = 30.0,
    reload: Annotated[bool, typer.Option("--reload", help="Delete and load the bench alerts again.")] = False,
) -> None:
    """p50/p99 of the alert list (with filters), detail and stats at a steady rate, beside raw Elasticsearch."""
    from secmon.bench.api import MIX, bench_api

    settings = load(ctx)
    ensure_cluster(settings)
    with console.status(f"Loading or checking {alerts:,} alerts …") as status:

        def progress(text: str) -> None:
            console.print(f"[dim]{text}[/]", highlight=False)
            status.update(text)

        # The API under test runs on the loop secmon up and secmon api use.
    result = run_async(bench_api(settings, alerts, rate, seconds, reload=reload, progress=progress))
    _load_report(result.prefix, result.load)
    title = f"secmon bench api: {result.load.alerts:,} alerts, {result.rate:g} requests/s for {result.seconds:g}s"
    console.print(_latency_table(title, [name for name, _ in MIX], ("api", "elasticsearch"), result.result))
    for scenario, _ in MIX:
        console.print(f"p99 ratio api / elasticsearch, {scenario}: [bold]{result.p99_ratio(scenario):.2f}×[/]")
    for note in result.notes:
        console.print(f"[dim]{note}[/]", highlight=False)


@app.command("console")
def console_pages(
    ctx: typer.Context,
    *,
    alerts: Annotated[
        int, typer.Option("--alerts", "-n", min=100, help="Alerts stored under <prefix>-benchapi (reused when there).")
    ] = 1_000_000,
    rate: Annotated[
        float, typer.Option(min=1, help="Requests per second, open loop, to each of console and Elasticsearch.")
    ] = 50.0,
    seconds: Annotated[float, typer.Option(min=1, help="How long to send, to each.")] = 30.0,
    renders: Annotated[int, typer.Option(min=1, help="Queue views opened in Chromium afterwards.")] = 20,
    reload: Annotated[bool, typer.Option("--reload", help="Delete and load the bench alerts again.")] = False,
) -> None:
    """p50/p99 of the console's queue and alert pages and its polling, beside raw Elasticsearch; render time."""
    from secmon.bench.console import MIX, bench_console

    settings = load(ctx)
    ensure_cluster(settings)
    with console.status(f"Loading or checking {alerts:,} alerts …") as status:

        def progress(text: str) -> None:
            console.print(f"[dim]{text}[/]", highlight=False)
            status.update(text)

        result = run_async(
            bench_console(settings, alerts, rate, seconds, reload=reload, renders=renders, progress=progress)
        )
    _load_report(result.prefix, result.load)
    title = f"secmon bench console: {result.load.alerts:,} alerts, {result.rate:g} requests/s for {result.seconds:g}s"
    console.print(_latency_table(title, [name for name, _ in MIX], ("console", "elasticsearch"), result.result))
    for scenario, _ in MIX:
        console.print(f"p99 ratio console / elasticsearch, {scenario}: [bold]{result.p99_ratio(scenario):.2f}×[/]")
    if result.renders:
        console.print(
            f"queue rendered in Chromium ({len(result.renders)} views): first paint median"
            f" [bold]{result.render_median('first_paint'):.0f} ms[/] (max {result.render_max('first_paint'):.0f}),"
            f" load event median [bold]{result.render_median('loaded'):.0f} ms[/]"
            f" (max {result.render_max('loaded'):.0f})"
        )
    if result.render_problem:
        console.print(f"[red]render not measured: {result.render_problem}[/]")
    for note in result.notes:
        console.print(f"[dim]{note}[/]", highlight=False)


def _load_report(prefix: str, load_: LoadReport) -> None:
    if load_.reused:
        console.print(
            f"reused {load_.alerts:,} alerts and {load_.events:,} events in {prefix}-* (--reload to load again)"
        )
    else:
        console.print(
            f"loaded {load_.alerts:,} alerts and {load_.events:,} events into {prefix}-* in {load_.seconds:.0f}s"
            " (bulk, refresh off, then one refresh; no force-merge)"
        )
    console.print(f"alerts index: {load_.segments} segments, {load_.store_bytes / 1e6:,.0f} MB", highlight=False)


def _latency_table(
    title: str, scenarios: Sequence[str], targets: Sequence[str], result_of: Callable[[str, str], Any]
) -> Table:
    """Requests, errors and latency percentiles per scenario and target."""
    table = Table("scenario", "target", "requests", "errors", "p50 ms", "p90 ms", "p99 ms", "max ms", title=title)
    for scenario in scenarios:
        for target in targets:
            r = result_of(target, scenario)
            errors = ", ".join(f"{n}× {what}" for what, n in sorted(r.errors.items()))
            table.add_row(
                scenario,
                target,
                f"{r.requests:,}",
                f"{r.error_count:,}" + (f" ({errors})" if errors else ""),
                f"{r.percentile(50) * 1000:.1f}",
                f"{r.percentile(90) * 1000:.1f}",
                f"{r.percentile(99) * 1000:.1f}",
                f"{r.max * 1000:.1f}",
            )
    return table


@app.command()
def fuzz(
    inputs: Annotated[int, typer.Option("--inputs", "-n", min=1, help="Inputs drawn for each parser.")] = 1_000_000,
    parsers: Annotated[
        list[str] | None,
        typer.Option("--parser", "-p", help="A parser to fuzz (repeatable); default: all of them."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the draws: the same seed draws the same inputs.")] = 0,
) -> None:
    """Feed each parser valid, damaged and random inputs: inputs/s and failures (exceptions, broken properties)."""
    from rich.markup import escape

    from secmon.bench.fuzz import TARGETS, fuzz

    chosen = parsers or list(TARGETS)
    unknown = [name for name in chosen if name not in TARGETS]
    if unknown:
        raise typer.BadParameter(f"no parser {', '.join(unknown)}; known: {', '.join(TARGETS)}", param_hint="--parser")
    with console.status("Fuzzing …") as status:
        results = fuzz(
            chosen, inputs, seed, progress=lambda name: status.update(f"Fuzzing {name}: {inputs:,} inputs …")
        )
    table = Table(
        "parser", "inputs", "seconds", "inputs/s", "parsed/s", "failures", title=f"secmon bench fuzz (seed {seed})"
    )
    for r in results:
        failures = f"[red]{r.failures:,}[/]" if r.failures else "0"
        if r.unavailable is not None:
            table.add_row(r.name, "-", "-", "-", "-", f"[yellow]not run: {escape(r.unavailable)}[/]")
            continue
        rates = (f"{r.inputs_per_second:,.0f}", f"{r.checked_per_second:,.0f}")
        table.add_row(r.name, f"{r.inputs:,}", f"{r.seconds:.1f}", *rates, failures)
    console.print(table)
    console.print("[dim]inputs/s: drawing, parsing and checking; parsed/s: parsing and checking only[/]")
    for r in results:
        console.print(f"[dim]{r.name}: {escape(r.description)}[/]", highlight=False)
    for r in results:
        if r.first_failure is not None:
            console.print(f"[red]{r.name}, first failure:[/] {escape(r.first_failure)}", highlight=False)
    if any(r.failures for r in results):
        raise typer.Exit(1)


@app.command()
def scale(
    ctx: typer.Context,
    messages: Annotated[
        int, typer.Option("--messages", "-n", min=1, help="Syslog lines sent to each configuration.")
    ] = 200_000,
    workers: Annotated[
        str, typer.Option(help="Detect worker counts to run over Kafka after the single process, comma-separated.")
    ] = "1,2,4",
    partitions: Annotated[int, typer.Option(min=1, help="Partitions of the benchmark's topics.")] = 4,
    kafka_port: Annotated[
        int,
        typer.Option(
            min=1, max=65534, help="Port of the benchmark's own local Kafka broker; its controller takes the next one."
        ),
    ] = 9692,
) -> None:
    """End-to-end events/s (syslog in → stored and matched) and CPU per event: single process, then k detect workers."""
    from rich.markup import escape

    from secmon.bench.scale import bench_scale, compact, parse_workers, sparkline
    from secmon.cli.context import remark

    try:
        counts = parse_workers(workers)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--workers") from None
    if max(counts) > partitions:
        raise typer.BadParameter(
            f"{max(counts)} detect workers need at least {max(counts)} partitions (--partitions {partitions})",
            param_hint="--workers",
        )
    settings = load(ctx)
    ensure_cluster(settings)
    with console.status(f"Sending {messages:,} syslog lines to each configuration …") as status:

        def progress(text: str) -> None:
            remark(f"[dim]{escape(text)}[/]")  # on stderr when piped: the rows alone go to stdout
            status.update(text)

        report = asyncio.run(
            bench_scale(
                settings, messages, workers=counts, partitions=partitions, kafka_port=kafka_port, progress=progress
            )
        )

    def micros(value: float | None) -> str:
        return "—" if value is None else f"{value:,.0f}"

    table = Table(
        "configuration",
        "events",
        "stored",
        "alerts",
        "seconds",
        "events/s",
        "secmon µs/event",
        "collector µs/event",
        "detect µs/event",
        "max lag",
        title=f"secmon bench scale: TCP syslog → stored and matched, {report.partitions} partitions, "
        f"{report.cores} cores",
    )
    for r in report.results:
        table.add_row(
            r.name,
            f"{r.events:,}",
            f"{r.stored:,}",
            f"{r.alerts:,}",
            f"{r.seconds:.2f}",
            f"{r.events_per_second:,.0f}",
            micros(r.secmon_us_per_event),
            micros(r.collector_us_per_event),
            micros(r.detect_us_per_event),
            "—" if r.max_lag is None else f"{r.max_lag:,}",
        )
    console.print(table)
    console.print("[bold]per-core efficiency[/] (events per CPU second):", highlight=False)
    for r in report.results:
        kafka = f", Kafka {r.kafka_us_per_event:,.0f} µs/event" if r.kafka_us_per_event is not None else ""
        console.print(
            f"  {r.name}: {r.events_per_secmon_cpu_second:,.0f} per secmon CPU second; "
            f"{r.events_per_machine_cpu_second:,.0f} per busy CPU second of the machine "
            f"({r.cores_busy:.2f} of {report.cores} cores busy{kafka})",
            highlight=False,
        )
    single = report.single
    for r in report.results[1:]:
        assert r.detect_us_per_event is not None  # a bus configuration
        console.print(
            f"ratio {r.name} / single: events/s [bold]{r.events_per_second / single.events_per_second:.2f}×[/], "
            f"detect µs/event [bold]{r.detect_us_per_event / single.secmon_us_per_event:.2f}×[/] "
            "(of the single process's µs/event), "
            f"secmon µs/event {r.secmon_us_per_event / single.secmon_us_per_event:.2f}×",
            highlight=False,
        )
    for r in report.results[1:]:
        every = " ".join(compact(lag) for lag in r.lag_every(2.0))
        spread = " ".join(f"{events:,}" for events in r.partition_events)
        console.print(
            f"lag {r.name} (detect group, highest in each 2 s): {every}  {sparkline([s.detect for s in r.lag])}",
            highlight=False,
        )
        console.print(f"  events per partition: {spread}", highlight=False)
    if single.alerts and any(r.alerts != single.alerts for r in report.results):
        console.print("[yellow]The configurations stored different numbers of alerts from the same lines.[/]")
    broker = f"; Kafka {report.bootstrap} (the benchmark's own broker)" if report.bootstrap else ""
    console.print(
        f"[dim]Elasticsearch {escape(report.elasticsearch)}{escape(broker)}; the same lines and the shipped rules for "
        "every configuration; CPU: user + system time of the secmon processes from the first byte sent until every "
        "event was stored and committed; the single process runs first, on the coldest Elasticsearch.[/]",
        highlight=False,
    )
