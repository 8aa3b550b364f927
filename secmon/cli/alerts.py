"""``secmon alerts``: list, read and triage alerts through the HTTP API, as an analyst would.

The API is found with ``--api``, else ``SECMON_API_URL``, else the configuration's
``api.address``; the key comes from ``--key`` or ``SECMON_API_KEY`` and is never printed.
Every failure ends in one line that says what to do next, and exit code 1.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import httpx
import orjson
import typer
from rich.console import RenderableType
from rich.table import Column, Table
from rich.text import Text

from secmon.api.schemas import AlertSummary
from secmon.cli.context import TAKES_IDS, check_ids, console, errors, load, remark
from secmon.cli.detect import LEVEL_STYLES
from secmon.events import get_field
from secmon.triage.query import AlertSort

if TYPE_CHECKING:
    from secmon.config import Settings

app = typer.Typer(help="List, read and triage alerts through the secmon API.", no_args_is_help=True)

API_URL_ENV = "SECMON_API_URL"
API_KEY_ENV = "SECMON_API_KEY"
KEY_HINT = f"set {API_KEY_ENV} (create one: secmon apikey create --role analyst --name <you>)"
MAX_PAGE = 500
SHOWN_EVENTS = 10
# What an event without a message is summarised by, in this order.
SUMMARY_FIELDS = ("event.action", "event.outcome", "source.ip", "destination.ip", "destination.port",
                  "dns.question.name", "process.executable", "process.command_line",
                  "user.name", "host.name")  # fmt: skip

ApiOption = Annotated[
    str | None,
    typer.Option("--api", help=f"API base URL (default: ${API_URL_ENV}, else http://<api.address> of the config)."),
]
KeyOption = Annotated[str | None, typer.Option("--key", help=f"API key (default: ${API_KEY_ENV}).", show_default=False)]
IdsArgument = Annotated[list[str], typer.Argument(help="Alert ids (several: one bulk request).")]
NoteOption = Annotated[str | None, typer.Option("--note", help="A note added to the alert's trail.")]


def _level(alert: AlertSummary) -> Text:
    return Text(alert.rule.level or "", style=LEVEL_STYLES.get(alert.rule.level or "", ""))


def _rule(alert: AlertSummary) -> Text:
    return Text(alert.rule.title or alert.rule.id, style=LEVEL_STYLES.get(alert.rule.level or "", ""))


def group_text(group: dict[str, str]) -> str:
    """A correlation's group-by values as ``field=value`` lines (joined by "; " when piped)."""
    return "\n".join(f"{name}={value}" for name, value in group.items())


# Every column an alert is shown with, in every command: a column showing an ECS field is named
# after it (organization.id, not "agency"; source.ip, not "source" or "host"), the others after
# secmon's own alert fields. The API's fields are listed beside each in the README.
ALERT_COLUMNS: dict[str, Callable[[AlertSummary], RenderableType]] = {
    "id": lambda alert: alert.id,
    "first seen": lambda alert: _when(alert.first_seen),
    "last seen": lambda alert: _when(alert.last_seen),
    "level": _level,
    "rule": _rule,
    "organization.id": lambda alert: alert.agency or "",
    "host.name": lambda alert: alert.host or "",
    "user.name": lambda alert: alert.user or "",
    "source.ip": lambda alert: alert.source_ip or "",
    "group": lambda alert: group_text(alert.group),
    "count": lambda alert: f"{alert.count:,}",
    "status": lambda alert: alert.status,
    "assignee": lambda alert: alert.assignee or "",
}
LIST_COLUMNS = ("id", "first seen", "level", "rule", "organization.id", "host.name", "user.name", "source.ip", "group",
                "count", "status", "assignee")  # fmt: skip


def alert_table(
    alerts: Sequence[AlertSummary], columns: Sequence[str], title: str | None = None, *, drop_empty: bool = False
) -> Table:
    """``alerts`` as a table of ``columns`` (names of :data:`ALERT_COLUMNS`).

    ``drop_empty`` leaves out the columns no alert has a value in: room on a terminal. Into a
    pipe every column stays, so that a script finds each one where the header says.
    """
    cells = {name: [ALERT_COLUMNS[name](alert) for alert in alerts] for name in columns}
    if drop_empty:
        columns = [name for name in columns if any(str(cell) for cell in cells[name])]
    table = Table(title=title)
    for name in columns:
        # Folded rather than cut if they must be: an id is what show, ack and close take, a group
        # is whom the alert is about.
        table.columns.append(Column(name, overflow="fold") if name in ("id", "group") else Column(name))
    for row in zip(*(cells[name] for name in columns), strict=True):
        table.add_row(*row)
    return table


class Resolution(StrEnum):
    true_positive = "true_positive"
    false_positive = "false_positive"
    benign = "benign"


class ApiClient:
    """The API over httpx, turning every failure into a message that says what to do and exit 1."""

    def __init__(self, ctx: typer.Context, api: str | None, key: str | None) -> None:
        self.url = (api or os.environ.get(API_URL_ENV) or _configured_url(ctx)).rstrip("/")
        secret = key or os.environ.get(API_KEY_ENV)
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        self.has_key = bool(secret)
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON answer of a successful request; anything else is reported and ends the command."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.ConnectError:
            fail(f"cannot reach the secmon API at {self.url}: is `secmon up` running? (or set --api / {API_URL_ENV})")
        except httpx.TimeoutException:
            fail(f"the secmon API at {self.url} did not answer in time; check `secmon status`")
        except httpx.HTTPError as exc:
            fail(f"request to the secmon API at {self.url} failed: {exc}")
        if response.is_success:
            return response.json()
        detail = _problem_detail(response)
        if response.status_code == 401:
            fail(f"the API refused the key ({detail}): {KEY_HINT}" if self.has_key else f"no API key: {KEY_HINT}")
        if response.status_code == 403:
            fail(f"{detail} (use a key whose role may do this, e.g. --role analyst)")
        fail(detail)


def fail(message: str) -> NoReturn:
    """Print ``message`` as an error and exit 1."""
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(1)


@app.command("ls")
def list_alerts(
    ctx: typer.Context,
    *,
    status: Annotated[list[str] | None, typer.Option(help="open, acknowledged or closed (repeatable).")] = None,
    level: Annotated[list[str] | None, typer.Option(help="informational … critical (repeatable).")] = None,
    rule: Annotated[list[str] | None, typer.Option(help="Rule id (repeatable).")] = None,
    agency: Annotated[list[str] | None, typer.Option(help="Agency id, organization.id (repeatable).")] = None,
    host: Annotated[list[str] | None, typer.Option(help="host.name (repeatable).")] = None,
    user: Annotated[list[str] | None, typer.Option(help="user.name (repeatable).")] = None,
    source_ip: Annotated[list[str] | None, typer.Option(help="source.ip, e.g. an attacker's (repeatable).")] = None,
    technique: Annotated[list[str] | None, typer.Option(help="ATT&CK technique id, e.g. T1110 (repeatable).")] = None,
    since: Annotated[str | None, typer.Option(help="First seen within 24h, 7d … or at/after an ISO date.")] = None,
    query: Annotated[str | None, typer.Option("-q", "--query", help="Free text (title, notes, host, user).")] = None,
    sort: Annotated[AlertSort, typer.Option(help="Order, newest or largest first.")] = AlertSort.TIME,
    limit: Annotated[int, typer.Option(min=1, help="Alerts to show at most.")] = 50,
    all_pages: Annotated[bool, typer.Option("--all", help="Every matching alert, page after page.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line instead of a table.")] = False,
    api: ApiOption = None,
    key: KeyOption = None,
) -> None:
    """List alerts matching the filters, newest first."""
    params: dict[str, Any] = {
        "status": status,
        "level": level,
        "rule": rule,
        "agency": agency,
        "host": host,
        "user": user,
        "source_ip": source_ip,
        "technique": technique,
        "since": _since(since) if since else None,
        "q": query,
        "sort": sort.value,
        "size": MAX_PAGE if all_pages else min(limit, MAX_PAGE),
    }
    params = {name: value for name, value in params.items() if value}
    with ApiClient(ctx, api, key) as client:
        pages = _pages(client, params, None if all_pages else limit)
        if as_json:
            for alert in (alert for page in pages for alert in page["alerts"]):
                typer.echo(orjson.dumps(alert).decode())
            return
        listed: list[AlertSummary] = []
        total, exact, more = 0, True, False
        for page in pages:
            total, exact, more = page["total"], page["total_is_exact"], bool(page["next_cursor"])
            listed += (AlertSummary.model_validate(alert) for alert in page["alerts"])
    if not listed:
        remark("No alerts match.")
        return
    console.print(alert_table(listed, LIST_COLUMNS, drop_empty=console.is_terminal))
    hint = " (--all or a larger --limit for more)" if more and not all_pages else ""
    remark(f"{len(listed):,} of {total:,}{'' if exact else '+'} alerts{hint}")


@app.command(context_settings=TAKES_IDS)
def show(
    ctx: typer.Context,
    alert_id: Annotated[str, typer.Argument(help="The alert's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="The API's answers as JSON.")] = False,
    api: ApiOption = None,
    key: KeyOption = None,
) -> None:
    """An alert in full: rule, where and who, counts, notes, the events that raised it, and its audit trail."""
    check_ids([alert_id])
    with ApiClient(ctx, api, key) as client:
        alert = client.request("GET", f"/alerts/{alert_id}")
        audit = client.request("GET", f"/alerts/{alert_id}/audit")
    if as_json:
        typer.echo(orjson.dumps({"alert": alert, "audit": audit}).decode())
        return
    rule = alert["rule"]
    style = LEVEL_STYLES.get(rule.get("level") or "", "")
    console.print(Text.assemble((rule.get("title") or rule["id"], f"bold {style}"), "  ", (alert["id"], "dim")))
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    for name, value in (
        ("level", Text(rule.get("level") or "", style=style)),
        ("status", alert["status"] + (f" ({alert['resolution']})" if alert.get("resolution") else "")),
        ("assignee", alert.get("assignee")),
        ("rule", f"{rule['id']} ({rule.get('type') or 'sigma'})"),
        ("description", (alert.get("description") or "").strip()),
        ("techniques", ", ".join(alert.get("techniques") or [])),
        ("tags", ", ".join(alert.get("rule_tags") or []) + _analyst_tags(alert)),
        ("organization.id", alert.get("agency")),
        ("host.name", alert.get("host")),
        ("user.name", alert.get("user")),
        ("source.ip", alert.get("source_ip")),
        ("group", group_text(alert.get("group") or {})),
        ("count", str(alert.get("count", 1))),
        ("first seen", _when(alert.get("first_seen"))),
        ("last seen", _when(alert.get("last_seen"))),
        ("references", "\n".join(alert.get("references") or [])),
    ):
        if value:
            facts.add_row(name, value)
    console.print(facts)
    for note in alert.get("notes") or []:
        console.print(f"[bold]note[/] {_when(note['at'])} {note['by']}: {note['text']}", highlight=False)
    events = alert.get("events") or []
    if events:
        title = f"events that raised it ({len(events):,})"
        table = Table("time", "dataset", "event", title=title, title_justify="left")
        for event in events[:SHOWN_EVENTS]:
            dataset = get_field(event, "event.dataset") or ""
            table.add_row(_when(event.get("@timestamp")), dataset, _event_summary(event))
        console.print(table)
        if len(events) > SHOWN_EVENTS:
            console.print(f"… and {len(events) - SHOWN_EVENTS:,} more (--json for all)")
    table = Table("when", "who", "action", "changes", title="audit trail", title_justify="left")
    for entry in audit:
        actor = entry.get("actor") or {}
        who = f"{actor.get('name', '')} ({actor.get('role', '')})" if actor.get("role") else actor.get("name", "")
        changes = "\n".join(
            f"{c.get('field')}: {_value(c.get('from'))} → {_value(c.get('to'))}" for c in entry.get("changes") or []
        )
        table.add_row(_when(entry.get("at") or entry.get("@timestamp")), who, entry.get("action", ""), changes)
    console.print(table if audit else "[dim]No changes yet.[/]")


@app.command(context_settings=TAKES_IDS)
def ack(
    ctx: typer.Context,
    *,
    alert_ids: IdsArgument,
    assignee: Annotated[str | None, typer.Option(help="Assign the alerts to NAME.")] = None,
    note: NoteOption = None,
    api: ApiOption = None,
    key: KeyOption = None,
) -> None:
    """Acknowledge alerts: someone is on them."""
    change: dict[str, Any] = {"status": "acknowledged", "assignee": assignee, "note": note}
    _triage(ctx, alert_ids, change, api, key)


@app.command(context_settings=TAKES_IDS)
def close(
    ctx: typer.Context,
    *,
    alert_ids: IdsArgument,
    resolution: Annotated[Resolution, typer.Option(help="What the alert turned out to be.")],
    note: NoteOption = None,
    api: ApiOption = None,
    key: KeyOption = None,
) -> None:
    """Close alerts with a resolution."""
    change: dict[str, Any] = {"status": "closed", "resolution": resolution.value, "note": note}
    _triage(ctx, alert_ids, change, api, key)


def _triage(ctx: typer.Context, alert_ids: list[str], change: dict[str, Any], api: str | None, key: str | None) -> None:
    body = {name: value for name, value in change.items() if value is not None}
    ids = list(dict.fromkeys(check_ids(alert_ids)))
    with ApiClient(ctx, api, key) as client:
        if len(ids) == 1:
            alert = client.request("PATCH", f"/alerts/{ids[0]}", json=body)
            console.print(f"[green]{alert['id']}[/]: {_outcome(alert)}", highlight=False)
            return
        answer = client.request("POST", "/alerts/bulk", json={"ids": ids, "change": body})
    for result in answer["results"]:
        if result["ok"]:
            console.print(f"[green]{result['id']}[/]: {_outcome(result['alert'])}", highlight=False)
        else:
            console.print(f"[red]{result['id']}[/]: {result.get('detail') or result['status']}", highlight=False)
    console.print(f"{answer['updated']:,} updated, {answer['failed']:,} failed", highlight=False)
    if answer["failed"]:
        raise typer.Exit(1)


def _pages(client: ApiClient, params: dict[str, Any], limit: int | None) -> Iterator[dict[str, Any]]:
    """Pages of the alert list, following next_cursor until ``limit`` alerts (None: all)."""
    seen = 0
    cursor: str | None = None
    while True:
        if limit is not None:
            params["size"] = min(MAX_PAGE, limit - seen)
        query = {**params, "cursor": cursor} if cursor else params
        page: dict[str, Any] = client.request("GET", "/alerts", params=query)
        seen += len(page["alerts"])
        yield page
        cursor = page.get("next_cursor")
        if not cursor or (limit is not None and seen >= limit):
            return


def _configured_url(ctx: typer.Context) -> str:
    return api_url(load(ctx))


def api_url(settings: Settings) -> str:
    """Where this machine reaches the API the configuration serves."""
    host, _, port = settings.api.address.rpartition(":")
    if host in ("0.0.0.0", "::", "[::]", ""):  # listening everywhere: this machine answers on loopback
        host = "127.0.0.1"
    scheme = "https" if settings.api.tls_cert else "http"
    return f"{scheme}://{host}:{port}"


def _since(text: str) -> str:
    """``24h``, ``7d``, ``30m`` … as the moment that long ago, or an ISO date or time as given (UTC if no zone)."""
    from secmon.config import parse_duration

    try:
        return (datetime.now(UTC) - timedelta(seconds=parse_duration(text))).isoformat()
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--since {text!r} is neither a duration (24h, 7d) nor an ISO date (2026-01-31)")
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def _problem_detail(response: httpx.Response) -> str:
    """The problem details' detail, or the body, or the status."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or f"HTTP {response.status_code}"
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("title")
        if isinstance(detail, list):  # validation errors listed field by field
            detail = "; ".join(str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in detail)
        if detail:
            return f"{detail} (HTTP {response.status_code})"
    return f"HTTP {response.status_code}"


def _outcome(alert: dict[str, Any]) -> str:
    status = str(alert.get("status"))
    if alert.get("resolution"):
        status += f" ({alert['resolution']})"
    if alert.get("assignee"):
        status += f", assigned to {alert['assignee']}"
    return status


def _analyst_tags(alert: dict[str, Any]) -> str:
    tags = alert.get("tags") or []
    return f"; analysts': {', '.join(tags)}" if tags else ""


def _when(value: Any) -> str:
    """An ISO timestamp as ``YYYY-MM-DD HH:MM:SS`` (UTC as stored)."""
    if not value:
        return ""
    text = str(value)
    return text[:19].replace("T", " ")


def _value(value: Any) -> str:
    if value is None or value == "":
        return "—"
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _event_summary(event: dict[str, Any]) -> str:
    """One line for an event: its message, else its most telling fields."""
    message = get_field(event, "message") or get_field(event, "event.original")
    if message:
        text = str(message)
        return text if len(text) <= 160 else text[:159] + "…"
    parts = []
    for dotted in SUMMARY_FIELDS:
        value = get_field(event, dotted)
        if value not in (None, ""):
            parts.append(f"{dotted}={value}")
    return " ".join(parts)
