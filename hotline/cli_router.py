"""``hotline agents ...``, ``hotline queues`` and ``hotline router``: the router from the command line."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import click

from routing.agents import Agent
from routing.exceptions import RouterError
from routing.live import queue_summaries

if TYPE_CHECKING:
    from hotline.app import Hotline


def register(main: click.Group, hotline_for_cli: Callable[[], Hotline]) -> None:
    """Adds the router commands to ``main``; ``hotline_for_cli()`` builds the hotline as the CLI does."""

    @main.group()
    def agents() -> None:
        """Agents: who takes calls, with which skills and languages."""

    @agents.command("add")
    @click.argument("agent_id")
    @click.option("--name", default="", help="Shown on screens; default the id.")
    @click.option("--endpoint", required=True, help="PJSIP/1001, client:alice, or +8613800000000.")
    @click.option("--skill", "skills", multiple=True, required=True, help="skill:level, e.g. loss:9 (repeat).")
    @click.option("--language", "languages", multiple=True, default=["zh-CN"], show_default=True)
    def agents_add(agent_id: str, name: str, endpoint: str, skills: tuple[str, ...],
                   languages: tuple[str, ...]) -> None:
        """Add an agent, or change one (their state is kept)."""
        from admin.agents.api import speaks_a_menu_language

        hotline = hotline_for_cli()
        try:
            levels = {skill: int(level) for skill, _, level in (s.partition(":") for s in skills)}
            agent = Agent(agent_id, name or agent_id, endpoint, levels, list(languages))
            speaks_a_menu_language(agent, hotline.menus.spoken_languages())
            hotline.connector.connect(hotline.agents.put(agent))
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"agent {agent_id}: {', '.join(skills)}; {', '.join(languages)}; {endpoint}")

    @agents.command("list")
    def agents_list() -> None:
        """Every agent with state, skills and calls taken today."""
        rows = [(a.id, a.name, a.state, ",".join(f"{s}:{lv}" for s, lv in a.skills.items()),
                 ",".join(a.languages), str(a.calls_today), a.endpoint) for a in hotline_for_cli().agents.all()]
        print_table(("ID", "NAME", "STATE", "SKILLS", "LANGUAGES", "TODAY", "ENDPOINT"), rows)

    @agents.command("remove")
    @click.argument("agent_id")
    def agents_remove(agent_id: str) -> None:
        hotline = hotline_for_cli()
        try:
            hotline.connector.settle(hotline.agents.remove(agent_id))
        except RouterError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"agent {agent_id} removed")

    @agents.command("state")
    @click.argument("agent_id")
    @click.argument("state", type=click.Choice(["available", "not_ready", "offline"]))
    def agents_state(agent_id: str, state: str) -> None:
        hotline = hotline_for_cli()
        try:
            hotline.connector.connect(hotline.router.set_agent_state(agent_id, state, "cli"))
        except RouterError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"agent {agent_id}: {state}")

    @main.command()
    @click.option("--watch", is_flag=True, help="Refresh every second until Ctrl-C.")
    def queues(watch: bool) -> None:
        """Live queues: callers waiting, longest wait, agents by state, expected wait."""
        hotline = hotline_for_cli()
        while True:
            rows = []
            for q in queue_summaries(hotline.router, hotline.agents.all()):
                agents_by_state = " ".join(f"{state}={n}" for state, n in q.agents.items()) or "-"
                expected = "-" if q.expected_wait_s is None else f"{q.expected_wait_s:.0f}s"
                rows.append((q.queue, str(q.waiting), f"{q.longest_wait_s:.0f}s", agents_by_state, expected))
            if watch:
                click.clear()
            print_table(("QUEUE", "WAITING", "LONGEST", "AGENTS", "EXPECTED WAIT"), rows)
            if not watch:
                return
            time.sleep(1)

    @main.command()
    def router() -> None:
        """Run the router's reconciler: offer timeouts, wrap-ups, lost calls, escalations (``hotline up`` runs it)."""
        from routing.ticker import run_ticker

        hotline = hotline_for_cli()
        hotline.router.configure()
        click.echo(f"router reconciler every {hotline.settings.router_tick_s}s")
        try:
            run_ticker(hotline.router, hotline.connector.connect, hotline.connector.cancel,
                       hotline.settings.router_tick_s, threading.Event())
        except KeyboardInterrupt:
            pass


def print_table(header: tuple[str, ...], rows: Sequence[Sequence[object]]) -> None:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        click.echo("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip())
