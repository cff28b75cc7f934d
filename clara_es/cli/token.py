"""`clara-es token`: mint an API token for local use, signed with the configured key."""

from __future__ import annotations

from datetime import timedelta

import click

from clara_es.cli.common import CommandError, api_credentials, print_json, settings
from clara_es.http.auth import DEFAULT_TTL, Role, mint


@click.command()
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True,
              help="client: its own sessions; agent: its room's; read: reads only.")
@click.option("--identity", required=True, help="Participant identity (client) or a name.")
@click.option("--room", help="The room (client and agent tokens).")
@click.option("--ttl", type=click.FloatRange(min=1), default=DEFAULT_TTL.total_seconds(),
              show_default=True, help="Seconds the token stays valid.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def token(role: str, identity: str, room: str | None, ttl: float, as_json: bool) -> None:
    """Print a bearer token for the HTTP API."""
    api_key, api_secret = api_credentials(settings())
    if not identity.strip():
        raise CommandError("--identity must not be empty")
    try:
        jwt = mint(api_key, api_secret, Role(role), identity, room, timedelta(seconds=ttl))
    except ValueError as exc:
        raise CommandError(f"{exc} (--room)") from None
    if as_json:
        print_json({"token": jwt, "role": role, "identity": identity, "room": room})
    else:
        click.echo(jwt)
