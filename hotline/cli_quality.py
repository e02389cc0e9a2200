"""``hotline quality sample``: run the quality sampling rules now (SQL only, no Redis needed)."""

from __future__ import annotations

import click

from hotline.settings import Settings
from quality.sampling import Sampler, SamplingRules
from quality.weeks import parse_week
from store.db import connect


def register(main: click.Group) -> None:
    @main.group()
    def quality() -> None:
        """Quality reviews: the sampling rules that fill the reviewers' queues."""

    @quality.command("sample")
    @click.option("--week", metavar="YYYY-Www", help="The ISO week (HOTLINE_TIMEZONE) to sample; default: this week.")
    def sample(week: str | None) -> None:
        """Pick the week's calls for review and queue the new ones to the reviewers, round-robin (re-runs add none:
        the worker does this every hour)."""
        try:
            week = parse_week(week) if week else None
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        settings = Settings()
        sampler = Sampler(connect(settings.sql_url),
                          SamplingRules(settings.quality_share_percent, settings.quality_long_call_s),
                          settings.timezone)
        result = sampler.run(week)
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(result.by_reason.items())) or "none"
        click.echo(f"{result.week}: {result.picked} calls picked ({reasons}), {result.added} new in the review queues")
