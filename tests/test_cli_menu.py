"""`hotline menu show` and `hotline menu publish` against the live store."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from hotline.cli import main
from hotline.settings import Settings

MENU_FILE = Path(__file__).resolve().parent.parent / "ivr" / "menus" / "hotline.yaml"


def cli_env(settings: Settings) -> dict[str, str]:
    return {"REDIS_URL": settings.redis_url or "", "DATABASE_URL": settings.sql_url,
            "HOTLINE_DATA_DIR": str(settings.data_dir)}


def test_show_prints_the_live_version_as_a_tree(settings: Settings) -> None:
    result = CliRunner(env=cli_env(settings)).invoke(main, ["menu", "show"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "hotline version 1 (live)"
    assert lines[1].startswith("welcome [say] 您好")
    assert any(line.strip().startswith("result wrong_pin -> inquiry_failed [say]") for line in lines)


def test_publish_makes_a_new_live_version_and_refuses_a_broken_one(settings: Settings, tmp_path: Path) -> None:
    runner = CliRunner(env=cli_env(settings))
    changed = tmp_path / "menu.yaml"
    changed.write_text(MENU_FILE.read_text(encoding="utf-8").replace("欢迎致电", "欢迎再次致电"), encoding="utf-8")
    assert runner.invoke(main, ["menu", "publish", str(changed), "--by", "alice"]).stdout.strip().endswith(
        "published hotline version 2")
    broken = tmp_path / "broken.yaml"
    broken.write_text(changed.read_text(encoding="utf-8").replace("next: main\n", "next: mian\n", 1), encoding="utf-8")
    result = runner.invoke(main, ["menu", "publish", str(broken)])
    assert result.exit_code == 1
    assert "node 'closed_notice': unknown target 'mian' for next" in result.output
    shown = runner.invoke(main, ["menu", "show"]).stdout
    assert shown.startswith("hotline version 2 (live)") and "欢迎再次致电" in shown


def test_publishing_a_file_that_is_not_utf8_is_refused_in_words(settings: Settings, tmp_path: Path) -> None:
    runner = CliRunner(env=cli_env(settings))
    before = runner.invoke(main, ["menu", "show"]).stdout
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("name: hotline\nnodes: {}\n# caf\u00e9\n".encode("latin-1"))
    result = runner.invoke(main, ["menu", "publish", str(latin1)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # no traceback
    assert "not UTF-8 text" in result.output
    assert runner.invoke(main, ["menu", "show"]).stdout == before  # the live menu stays
