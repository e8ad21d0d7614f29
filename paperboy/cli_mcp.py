"""``paperboy mcp``: the Model Context Protocol server over stdio (``mcp_server.py``), for agents."""

from __future__ import annotations

import click

from .cli import Context, errors_to_exit


@click.command("mcp")
@click.option("--token", envvar="PAPERBOY_TOKEN", show_envvar=True,
              help="API token whose owner's recommendations, library and feedback the tools use "
                   "(prefer the environment variable: arguments show in process lists).")
@click.pass_obj
def mcp_cmd(obj: Context, token: str | None) -> None:
    """Serve the Model Context Protocol over stdin/stdout for agents: search, daily, trending, paper,
    similar; with an API token, the reader's recommendations, library, save/unsave and feedback.
    Needs paperboy[mcp]. Logs go to stderr (stdout is the protocol)."""
    with errors_to_exit():
        from .mcp_server import serve  # the mcp extra; a clear error without it

        with obj.engine() as engine:
            serve(engine, token)
