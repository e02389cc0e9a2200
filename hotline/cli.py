"""The ``hotline`` command."""

# ruff: noqa: E402  (the FastAGI process is patched for gevent before the imports below)

from __future__ import annotations

import sys

if __name__ in ("__main__", "hotline.cli") and sys.argv[1:2] == ["agi"]:
    # `hotline agi` serves each call in a greenlet (HOTLINE_AGI_RUNTIME=threads: a thread): gevent has to patch the
    # standard library before anything imports it (hotline/cooperative.py).
    from hotline.cooperative import patch_process

    patch_process()

import atexit
import logging
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import click
from pydantic import ValidationError

from hotline import cli_db, cli_quality, cli_reports, cli_router, cli_status, cli_users, cli_workers, logs
from hotline.files import secure_data_dir
from hotline.heartbeat import start_heartbeat
from hotline.settings import PROCESS_NAME_VARIABLE, Settings
from hotline.supervisor import Child, Supervisor

if TYPE_CHECKING:
    from hotline.app import Hotline
from ivr.loader import MenuError, load_menu_file, node_lines, parse_menu, read_menu_bytes
from ivr.model import Menu
from ivr.validate import edges_of


def configure_logging(level: int = logging.INFO) -> None:
    """Text or JSON lines (``HOTLINE_LOG_FORMAT``), redacted, in this process and those it starts."""
    try:
        log_format = Settings().log_format
    except ValidationError:  # the command itself reports bad settings; its log lines still go out
        log_format = "text"
    logs.configure_logging(level, log_format)


@click.group()
def main() -> None:
    """hotline: IVR and call routing for Asterisk and Twilio."""
    configure_logging()
    _beat_for_hotline_up()


def _beat_for_hotline_up() -> None:
    """A process ``hotline up`` started beats under the name it was given: ``hotline status`` reads it."""
    try:
        settings = Settings()
    except ValidationError:
        return
    if settings.process_name:
        start_heartbeat(settings.data_dir, settings.process_name)


@main.command()
def up() -> None:
    """Run the whole hotline on this machine (web on :8000, own Redis unless REDIS_URL is set)."""
    first = Settings()
    secure_data_dir(first.data_dir, first.asterisk_group)  # before any file is made: 600 files, 700 folders
    _claim_data_dir(first.data_dir)
    _metrics_folder(first.data_dir)
    settings = _settings_with_redis()
    from hotline.app import prepare
    from recordings.prompts import MissingTool, require_tools

    cli_db.upgrade_database(settings)  # the one place that migrates: before any other process starts
    hotline = prepare(settings)
    try:
        require_tools()
        _build_prompts(hotline, verbose=False)  # Asterisk callers hear the menu as published
    except MissingTool as exc:
        click.echo(f"no prompt audio for Asterisk: {exc}", err=True)
    click.echo(f"hotline up: web on http://{settings.web_host}:{settings.web_port}, "
               f"Twilio webhook {settings.public_url}/twilio/voice, redis {settings.redis_url}")
    if not settings.twilio_auth_token:
        click.echo("TWILIO_AUTH_TOKEN is not set: every Twilio webhook will be refused with 403", err=True)
    click.echo(f"FastAGI on {settings.agi_host}:{settings.agi_port}: AGI(agi://{settings.agi_host}:"
               f"{settings.agi_port}/{settings.menu_name},${{HOTLINE_AGI_SECRET}})")
    _tell_agi_secret(settings)
    _first_admin(hotline, settings)
    # FastAGI, the router reconciler and the RQ workers in their own processes, restarted when one dies;
    # gunicorn forks its web workers from this one (and restarts those itself).
    supervisor = Supervisor(_children(settings))
    supervisor.start()
    start_heartbeat(settings.data_dir, WEB_PROCESS)
    master = os.getpid()
    try:
        _serve_web(settings)
    finally:
        if os.getpid() == master:  # not in gunicorn's forked workers
            supervisor.stop()


WEB_PROCESS = "web"
"""The heartbeat name of ``hotline up`` itself: gunicorn's master, which restarts its web workers."""


def _metrics_folder(data_dir: Path) -> None:
    """``<data dir>/metrics``, emptied, as ``PROMETHEUS_MULTIPROC_DIR`` of this process, its gunicorn workers and
    every child (``metrics``' docstring says why)."""
    import shutil

    from metrics import use_multiprocess_dir

    folder = data_dir / "metrics"
    shutil.rmtree(folder, ignore_errors=True)  # the last run's counters would be summed in
    folder.mkdir(parents=True, mode=0o700)
    use_multiprocess_dir(str(folder.resolve()))


def _children(settings: Settings) -> list[Child]:
    command = [sys.executable, "-m", "hotline.cli"]
    workers = [f"worker-{n}" for n in range(1, settings.worker_processes + 1)]
    agis = [f"agi-{n}" for n in range(1, settings.agi_processes + 1)]
    return [Child(name, [*command, name.split("-")[0]], env={**os.environ, PROCESS_NAME_VARIABLE: name})
            for name in [*agis, "router", *workers]]


def process_names(settings: Settings) -> list[str]:
    """Every process ``hotline up`` runs with these settings, by heartbeat name."""
    return [WEB_PROCESS, *(child.name for child in _children(settings))]


def _claim_data_dir(data_dir: Path) -> None:
    """One ``hotline up`` per data folder: a second would serve FastAGI beside the first on the same port
    (SO_REUSEPORT) and share its Redis. The pid file names the running one."""
    from store.redis_server import pid_alive, read_pid

    pid_file = data_dir / "hotline-up.pid"
    running = read_pid(pid_file)
    if pid_alive(running):
        raise click.ClickException(f"hotline up already runs for {data_dir.resolve()} (pid {running}): "
                                   f"stop it first (kill {running}), or set HOTLINE_DATA_DIR for a second hotline")
    data_dir.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{os.getpid()}\n")
    master = os.getpid()

    def release() -> None:
        if os.getpid() == master:  # not in gunicorn's forked workers
            pid_file.unlink(missing_ok=True)

    atexit.register(release)


def _first_admin(hotline: Hotline, settings: Settings) -> None:
    """On a hotline nobody can log in to yet: an ``admin`` with a random password, shown once, here only."""
    import secrets

    if hotline.accounts.all():
        return
    password = secrets.token_urlsafe(12)
    hotline.accounts.add("admin", "admin", password)
    click.echo(f"no users yet: log in at http://{settings.web_host}:{settings.web_port}/login as admin with "
               f"password {password} (shown only now; change it on Users, or: hotline users passwd admin)")


def _tell_agi_secret(settings: Settings) -> None:
    """The FastAGI secret, shown when it is made (at the first start), like the first admin's password."""
    from hotline.agi_app import agi_secret

    secret, created = agi_secret(settings)
    if created:
        click.echo(f"FastAGI secret generated: in extensions.conf [globals] set HOTLINE_AGI_SECRET={secret} "
                   "(shown only now; `hotline agi-secret` shows it again)")


@main.command("agi-secret")
def agi_secret_command() -> None:
    """Show the FastAGI shared secret the dialplan must pass (extensions.conf [globals] HOTLINE_AGI_SECRET)."""
    from hotline.agi_app import agi_secret

    secret, _ = agi_secret(Settings())
    click.echo(f"HOTLINE_AGI_SECRET={secret}")


@main.command()
def agi() -> None:
    """Run only the FastAGI server (Asterisk: AGI(agi://HOST:4573/hotline))."""
    settings = _settings_with_redis()
    from hotline.agi_app import create_agi_server
    from hotline.app import prepare
    from hotline.cooperative import on_signal
    from hotline.heap import settle_heap

    server = create_agi_server(prepare(settings))
    settle_heap()  # a greenlet per call: a full collection holds every call of the process
    # SIGTERM (a restart, or `hotline up` stopping) lets the calls in progress finish first.
    on_signal(signal.SIGTERM, server.shutdown)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if server.calls:
            click.echo(f"FastAGI stopping: waiting up to {settings.agi_drain_s:.0f} s for {server.calls} calls",
                       err=True)
        left = server.drain(settings.agi_drain_s)
        if left:
            click.echo(f"FastAGI stopped with {left} calls still in progress (cut)", err=True)


@main.group("agi-script")
def agi_script() -> None:
    """Plain AGI (one Python process per call): the launcher Asterisk runs."""


@agi_script.command("install")
@click.option("--dir", "agi_bin", type=click.Path(path_type=Path), default=Path("/var/lib/asterisk/agi-bin"),
              show_default=True, help="Asterisk's astagidir")
def agi_script_install(agi_bin: Path) -> None:
    """Write the hotline-agi launcher for AGI(hotline-agi) into Asterisk's agi-bin."""
    from agi_scripts.launcher import install_launcher

    target = install_launcher(agi_bin, Path.cwd().resolve())
    click.echo(f"wrote {target}: in the dialplan, AGI({target.name}) or AGI({target.name},<menu>); "
               "give Asterisk's user read access to it (chgrp asterisk)")


@main.command()
def web() -> None:
    """Run only the web app (Twilio webhooks)."""
    settings = _settings_with_redis()
    from hotline.app import prepare

    prepare(settings)
    _serve_web(settings)


@main.command()
@click.option("--channel", type=click.Choice(["asterisk", "twilio"]), default="asterisk", show_default=True)
@click.option("--keys", help='A scripted call: entries separated by commas, e.g. "1,4111111111111111#,123456"; '
              'an empty entry is silence, "record:30" speaks 30 s. Without it you type the keys.')
@click.option("--language", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@click.option("--caller", default="13812345678", show_default=True)
@click.option("--url", help="Twilio channel: the hotline's base URL (default HOTLINE_PUBLIC_URL).")
@click.option("--hold", "hold_s", type=float, default=60, show_default=True,
              help="Seconds the caller stays on hold, and talks once put through to an agent.")
def call(channel: str, keys: str | None, language: str, caller: str, url: str | None, hold_s: float) -> None:
    """Dial the hotline from the terminal, as Asterisk (FastAGI) or Twilio (signed webhooks) would."""
    from softphone.terminal import call_asterisk, call_twilio

    settings = Settings()
    entries = keys.split(",") if keys is not None else []
    ask = None if keys is not None else _ask_keys
    if channel == "twilio":
        call_twilio(url or settings.public_url, settings.twilio_auth_token, entries, ask, caller, language, hold_s)
    else:
        from hotline.agi_app import agi_secret

        host = "127.0.0.1" if settings.agi_host in ("0.0.0.0", "") else settings.agi_host
        call_asterisk(host, settings.agi_port, settings.recordings_dir / "prompts", settings.menu_name, entries, ask,
                      caller, language, hold_s, agi_secret(settings)[0])


def _ask_keys(wanted: str) -> str:
    return click.prompt(f"  [{wanted}]", default="", show_default=False)


@main.group()
def menu() -> None:
    """Check, show and publish IVR menus."""


@menu.command("validate")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def menu_validate(file: Path) -> None:
    """Check a menu file: a summary when valid, one line per problem when not."""
    try:
        parsed = load_menu_file(file)
    except MenuError as exc:
        lines = node_lines(read_menu_bytes(file))
        for problem in exc.problems:
            line = problem.line or lines.get(problem.node or "")
            click.echo(f"{file}:{line or 1}: {problem}")
        sys.exit(1)
    kinds: dict[str, int] = {}
    for node in parsed.nodes.values():
        kinds[node.type] = kinds.get(node.type, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    click.echo(f"{file}: valid menu '{parsed.name}': {len(parsed.nodes)} nodes ({summary}), "
               f"languages {', '.join(parsed.languages)}")


@menu.command("show")
@click.option("--file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Show this file instead of the live menu.")
def menu_show(file: Path | None) -> None:
    """Print the live menu as a tree."""
    if file:
        parsed = parse_menu(read_menu_bytes(file))
        click.echo(f"{parsed.name} (file {file})")
    else:
        from hotline.app import prepare

        settings = _settings_with_redis()
        parsed = prepare(settings).menus.live(settings.menu_name)
        click.echo(f"{parsed.name} version {parsed.version} (live)")
    for line in menu_tree(parsed):
        click.echo(line)


@menu.command("publish")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--by", default=lambda: os.environ.get("USER", "cli"), help="Who publishes.")
def menu_publish(file: Path, by: str) -> None:
    """Validate FILE and make it the live menu: new calls use it at once, calls in progress finish on theirs."""
    from hotline.app import prepare

    settings = _settings_with_redis()
    try:
        source = read_menu_bytes(file).decode("utf-8")
    except UnicodeDecodeError as exc:
        click.echo(f"{file}: not UTF-8 text (byte {exc.start}): save the menu as UTF-8", err=True)
        sys.exit(1)
    try:
        published = prepare(settings).menus.publish(source, published_by=by)
    except MenuError as exc:
        for problem in exc.problems:
            click.echo(f"{file}: {problem}")
        sys.exit(1)
    click.echo(f"published {published.name} version {published.version}")


def menu_tree(menu: Menu) -> list[str]:
    """The menu as an indented tree from the start node; nodes seen before are referenced, not repeated."""
    lines: list[str] = []
    seen: set[str] = set()

    def walk(node_id: str, label: str, depth: int) -> None:
        node = menu.nodes[node_id]
        text = (node.prompt or {}).get(menu.default_language, "")
        head = f"{'  ' * depth}{label}{node_id} [{node.type}]"
        if node_id in seen:
            lines.append(f"{head} (see above)")
            return
        seen.add(node_id)
        lines.append(f"{head} {text[:60]}".rstrip())
        for edge, target in edges_of(menu, node).items():
            walk(target, f"{edge} -> ", depth + 1)

    walk(menu.start, "", 0)
    return lines


def _settings_with_redis() -> Settings:
    """Settings with REDIS_URL filled in: the configured one, or our own local redis-server."""
    settings = Settings()
    if settings.redis_url:
        return settings
    from store.redis_server import ensure_local_redis

    url, started = ensure_local_redis(settings.data_dir)
    if started:
        # Stopped however this process ends (a crash while preparing too), but only by this process:
        # gunicorn workers are forks of it.
        _own_redis.append((os.getpid(), settings.data_dir))
        atexit.register(_stop_own_redis)
    os.environ["REDIS_URL"] = url  # worker processes build their Settings from the environment
    return Settings()


_own_redis: list[tuple[int, Path]] = []
"""redis-servers this process started (pid, data folder), stopped when it ends."""


def _stop_own_redis() -> None:
    from store.redis_server import stop_local_redis

    for pid, data_dir in _own_redis:
        if pid == os.getpid():  # gunicorn workers are forks of us: only the master stops Redis
            stop_local_redis(data_dir)


def _serve_web(settings: Settings) -> None:
    from hotline.wsgi_server import serve

    serve(settings)


@main.command(context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("options", nargs=-1, type=click.UNPROCESSED)
def simulate(options: tuple[str, ...]) -> None:
    """Play a compressed day of calls, with faults, against a fresh hotline (``--help`` for the options)."""
    from simulate.day import main as day

    sys.exit(day(list(options)))


@main.group()
def prompts() -> None:
    """Render menu prompts to the audio Asterisk plays."""


@prompts.command("build")
def prompts_build() -> None:
    """Render every prompt of every published menu to 8 kHz WAV (espeak-ng + sox), only what changed."""
    from hotline.app import prepare
    from recordings.prompts import MissingTool, require_tools

    try:
        require_tools()
    except MissingTool as exc:
        click.echo(f"hotline prompts build: {exc}", err=True)
        sys.exit(1)
    settings = _settings_with_redis()
    if _build_prompts(prepare(settings), verbose=True)["failed"]:
        sys.exit(1)


def _build_prompts(hotline: Hotline, verbose: bool) -> dict[str, int]:
    """Render what changed in every published menu, and the FastAGI apology; return the counts."""
    from agi_scripts.server import APOLOGY_FILE
    from recordings.prompts import PromptRenderer, render_wav, summary_lines
    from webhooks.fallbacks import APOLOGY

    renderer = PromptRenderer(hotline.settings.recordings_dir / "prompts")
    if not (renderer.root / APOLOGY_FILE).exists():  # what a caller hears when the FastAGI side fails
        render_wav(APOLOGY, "zh-CN", renderer.root / APOLOGY_FILE)
    totals = {"rendered": 0, "unchanged": 0, "dynamic": 0, "failed": 0}
    for name in hotline.menus.names():
        report = renderer.build(hotline.menus.live(name))
        for line in summary_lines(report) if verbose else ():
            click.echo(line)
        totals = {kind: count + report.count(kind) for kind, count in totals.items()}
    click.echo(f"total: rendered {totals['rendered']}, unchanged {totals['unchanged']}, skipped (dynamic) "
               f"{totals['dynamic']}, failed {totals['failed']}; audio under {renderer.root}")
    return totals


def _hotline_for_cli() -> Hotline:
    from hotline.app import build_hotline

    return build_hotline(_settings_with_redis())


cli_router.register(main, _hotline_for_cli)
cli_reports.register(main, _hotline_for_cli)
cli_workers.register(main, _hotline_for_cli)
cli_users.register(main)
cli_quality.register(main)
cli_status.register(main, process_names)
cli_db.register(main)


if __name__ == "__main__":
    main()
