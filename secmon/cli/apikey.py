"""``secmon apikey``: create, list and revoke the API keys agencies and analysts use."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.table import Table

from secmon.auth import KeyStore, Role
from secmon.cli.context import TAKES_IDS, check_ids, console, ensure_cluster, load
from secmon.config import Settings
from secmon.store import IndexNames, connect

app = typer.Typer(help="API keys: who may send events or use the API, for which agencies.", no_args_is_help=True)
T = TypeVar("T")


def _with_store(settings: Settings, action: Callable[[KeyStore], Awaitable[T]]) -> T:
    async def run() -> T:
        client = connect(settings.elasticsearch)
        try:
            store = KeyStore(client, IndexNames(settings.elasticsearch.index_prefix))
            await store.ensure_index()
            return await action(store)
        finally:
            await client.close()

    ensure_cluster(settings)
    return asyncio.run(run())


@app.command()
def create(
    ctx: typer.Context,
    role: Annotated[Role, typer.Option(help="What the key may do.")],
    name: Annotated[str, typer.Option(help="Who or what uses it, e.g. 'health-filebeat'.")],
    agency: Annotated[list[str] | None, typer.Option(help="Agency it acts for (repeat for several).")] = None,
) -> None:
    """Create a key and print its secret, once: it is stored only as a hash."""
    key, secret = _with_store(load(ctx), lambda store: store.create(role, agencies=agency or (), name=name))
    console.print(f"Created key [bold]{key.id}[/] ({key.role}, agencies: {', '.join(key.agencies) or 'all'}).")
    console.print("Its secret, shown only now:")
    print(secret)  # plain, so that scripts can capture it


@app.command("list")
def list_keys(ctx: typer.Context) -> None:
    """List the keys (never their secrets)."""
    keys = _with_store(load(ctx), lambda store: store.list())
    table = Table("id", "name", "role", "agencies", "created", "revoked")
    for key in keys:
        table.add_row(
            key.id, key.name, key.role, ", ".join(key.agencies), key.created.isoformat(), "yes" if key.revoked else ""
        )
    console.print(table)


@app.command(context_settings=TAKES_IDS)
def revoke(
    ctx: typer.Context, key_id: Annotated[str, typer.Argument(help="The key's id, from secmon apikey list.")]
) -> None:
    """Revoke a key for good."""
    check_ids([key_id])
    if not _with_store(load(ctx), lambda store: store.revoke(key_id)):
        console.print(f"[red]No key {key_id}.[/]")
        raise typer.Exit(1)
    console.print(f"Key {key_id} revoked.")
