"""``hotline report``: the contact-center report of a period, as text, JSON or CSV (figures in ``workers.reports``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reports.queries import build_report, parse_period
from reports.render import summary_lines, to_csv

if TYPE_CHECKING:
    from hotline.app import Hotline


def register(main: click.Group, hotline_for_cli: Callable[[], Hotline]) -> None:
    """Adds ``hotline report`` to ``main``; ``hotline_for_cli()`` builds the hotline as the CLI does."""

    @main.command()
    @click.option("--from", "start", required=True, metavar="YYYY-MM-DD", help="First local day of the period.")
    @click.option("--to", "end", required=True, metavar="YYYY-MM-DD", help="Last local day (inclusive).")
    @click.option("--csv", "csv_file", type=click.Path(dir_okay=False, writable=True, path_type=Path),
                  help="Also write the figures to FILE as CSV (section,metric,value).")
    @click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of text.")
    def report(start: str, end: str, csv_file: Path | None, as_json: bool) -> None:
        """Calls, queue KPIs, complaints and return visits of the local days FROM..TO (HOTLINE_TIMEZONE)."""
        try:
            first, last = parse_period(start, end)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        hotline = hotline_for_cli()
        settings = hotline.settings
        result = build_report(hotline.sql, first, last, settings.timezone, settings.service_level_s)
        if csv_file:
            csv_file.write_text(to_csv(result), encoding="utf-8")
        if as_json:
            click.echo(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
        else:
            for line in summary_lines(result):
                click.echo(line)
        if csv_file:
            click.echo(f"CSV written to {csv_file}", err=True)
