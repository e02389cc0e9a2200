"""``hotline worker`` and ``hotline complaints ...``: records, work orders and return visits from the shell."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import click

from complaints.work_orders import WorkOrderError
from hotline.cli_router import print_table

if TYPE_CHECKING:
    from hotline.app import Hotline

T = TypeVar("T")


def register(main: click.Group, hotline_for_cli: Callable[[], Hotline]) -> None:
    """Adds the worker and complaint commands to ``main``."""

    @main.command()
    @click.option("--burst", is_flag=True, help="Run the queued jobs, then stop.")
    def worker(burst: bool) -> None:
        """Run an RQ worker (with the scheduler), the call-record writer and the periodic jobs."""
        import faulthandler
        import signal

        # `kill -USR1 <pid>` prints every thread's stack to the log: what a worker slow to stop is waiting on.
        faulthandler.register(signal.SIGUSR1, all_threads=True)
        from workers.records import RecordWriter
        from workers.runner import WorkerConfig, run_worker

        hotline = hotline_for_cli()
        s = hotline.settings
        clients = hotline.redis_clients
        click.echo(f"worker: call records into {s.sql_url.split('@')[-1]}, from {clients.describe()}")
        run_worker(WorkerConfig(hotline.events.stream, claim_idle_s=s.records_claim_idle_s), RecordWriter(hotline.sql),
                   hotline, clients.jobs(), clients.blocking(10, connect_timeout_s=5), burst=burst,
                   flush_spool=hotline.events.flush)

    @main.group()
    def complaints() -> None:
        """Complaint work orders: list, show, assign, resolve, close."""

    @complaints.command("list")
    @click.option("--status", help="open, assigned, in_progress, resolved, visited, closed, reopened")
    @click.option("--category", help="service, fees, card_account, other")
    @click.option("--overdue", is_flag=True, help="Only those past a deadline.")
    @click.option("--json", "as_json", is_flag=True)
    def complaints_list(status: str | None, category: str | None, overdue: bool, as_json: bool) -> None:
        orders = hotline_for_cli().desk.list(status=status, category=category, overdue=True if overdue else None)
        if as_json:
            click.echo(json.dumps(orders, ensure_ascii=False, indent=1))
            return
        header = ("number", "status", "category", "priority", "caller", "assignee", "overdue", "created")
        rows = [(o["number"], o["status"], o["category"], str(o["priority"]), o["caller"], o["assignee"] or "-",
                 o["overdue"] or "-", (o["created_at"] or "")[:16]) for o in orders]
        print_table(header, rows)

    @complaints.command("show")
    @click.argument("number")
    def complaints_show(number: str) -> None:
        order = _run(lambda: hotline_for_cli().desk.show(number))
        for key, value in order.items():
            if key != "changes":
                click.echo(f"{key:18} {value if value is not None else '-'}")
        click.echo("history:")
        for change in order["changes"]:
            moved = f"{change['from'] or '-'} -> {change['to']}" if change["from"] != change["to"] else change["to"]
            click.echo(f"  {change['at'][:19]}  {change['actor']:20} {change['action']:9} {moved}  {change['detail']}")

    for action, helptext in (("assign", "Give the work order to someone."), ("start", "Start working on it."),
                             ("resolve", "Mark it resolved: schedules the return visit."),
                             ("close", "Close it (after the return visit).")):
        _transition_command(complaints, hotline_for_cli, action, helptext)


def _transition_command(group: click.Group, hotline_for_cli: Callable[[], Hotline], action: str,
                        helptext: str) -> None:
    @group.command(action, help=helptext)
    @click.argument("number")
    @click.option("--by", "actor", required=True, help="Who does it (kept in the audit trail).")
    @click.option("--note", default="", help="What was done (the resolution, for resolve).")
    @click.option("--to", "assignee", default=None, help="assign: an active admin or supervisor (user name).")
    def command(number: str, actor: str, note: str, assignee: str | None) -> None:
        from admin.work_orders.assignees import assignee_refusal

        hotline = hotline_for_cli()
        refusal = assignee_refusal(hotline.accounts, assignee) if action == "assign" else None
        if refusal:  # the pages' and the API's rule: a work order goes to someone who works orders
            raise click.ClickException(refusal)
        order = _run(lambda: hotline.desk.act(number, action, actor, note=note, assignee=assignee))
        click.echo(f"work order {order['number']}: {order['status']}")


def _run(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except WorkOrderError as exc:
        raise click.ClickException(str(exc)) from None
