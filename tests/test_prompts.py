"""`hotline prompts build`: real espeak-ng and sox, rendered once per module and copied into each test."""

from __future__ import annotations

import shutil
import time
import wave
from pathlib import Path

import pytest
from click.testing import CliRunner

from calls.menus import DEFAULT_MENU_FILE
from hotline.app import Hotline
from hotline.cli import main
from hotline.settings import Settings
from ivr.loader import load_menu_file, parse_menu
from ivr.model import Menu
from recordings.prompts import BuildReport, PromptRenderer, RenderError, is_dynamic, render_wav, speech_plan
from tests.test_cli_menu import cli_env

DYNAMIC = {"inquiry_result", "loss_done", "complaint_done"}


@pytest.fixture(scope="module")
def default_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Menu, BuildReport, Path]:
    """The default menu rendered from scratch, once: (menu, report, prompts root)."""
    root = tmp_path_factory.mktemp("prompts")
    menu = load_menu_file(DEFAULT_MENU_FILE).model_copy(update={"version": 1})
    return menu, PromptRenderer(root).build(menu), root


@pytest.fixture
def renderer(settings: Settings, default_build: tuple[Menu, BuildReport, Path]) -> PromptRenderer:
    """A renderer whose folder already holds the default menu's audio, as after a first build."""
    root = settings.recordings_dir / "prompts"
    shutil.copytree(default_build[2], root)
    return PromptRenderer(root)


def test_first_build_renders_every_static_prompt_in_every_language(
        default_build: tuple[Menu, BuildReport, Path]) -> None:
    menu, report, root = default_build
    static = {(pid, lang): text for pid, texts in menu.prompts().items()
              for lang, text in texts.items() if not is_dynamic(text)}
    assert len(static) > 40
    assert {(pid, lang) for lang, done in report.languages.items() for pid in done.rendered} == set(static)
    assert report.count("unchanged") == report.count("failed") == 0
    audio_by_text: dict[str, set[bytes]] = {}
    for (pid, lang), text in static.items():
        audio_by_text.setdefault(text, set()).add(_frames(root / menu.name / lang / f"{pid}.wav"))
        assert (root / menu.name / lang / f"{pid}.sha256").exists()
    assert all(len(audio) == 1 for audio in audio_by_text.values())  # same text, same audio
    assert len(set().union(*audio_by_text.values())) == len(audio_by_text)  # different texts differ
    assert not list(root.rglob(".*"))  # no temporary files left behind


def test_a_second_build_renders_nothing(renderer: PromptRenderer, hotline: Hotline) -> None:
    started = time.monotonic()
    report = renderer.build(hotline.menus.live("hotline"))
    assert time.monotonic() - started < 0.5
    assert report.count("rendered") == 0
    assert report.count("unchanged") == sum(len(done.unchanged) for done in report.languages.values()) > 40


def test_publishing_a_changed_prompt_renders_only_that_prompt(renderer: PromptRenderer, hotline: Hotline) -> None:
    before = {path: path.stat().st_mtime_ns for path in renderer.root.rglob("*.wav")}
    source = DEFAULT_MENU_FILE.read_text(encoding="utf-8")
    source = source.replace("欢迎致电", "欢迎再次致电").replace("Welcome to the", "Welcome back to the")
    hotline.menus.publish(source, published_by="test")
    report = renderer.build(hotline.menus.live("hotline"))
    assert report.version == 2
    assert {lang: done.rendered for lang, done in report.languages.items()} == {
        "zh-CN": ["welcome"], "en-US": ["welcome"]}
    changed = {path for path, mtime in before.items() if path.stat().st_mtime_ns != mtime}
    assert changed == {renderer.path("hotline", "zh-CN", "welcome"), renderer.path("hotline", "en-US", "welcome")}


def test_dynamic_prompts_are_skipped_and_left_for_call_time(
        default_build: tuple[Menu, BuildReport, Path], renderer: PromptRenderer) -> None:
    menu, report, root = default_build
    for language in menu.languages:
        assert set(report.languages[language].dynamic) == DYNAMIC
        assert not [pid for pid in DYNAMIC if (root / menu.name / language / f"{pid}.wav").exists()]
    # A prompt that was static once and now has a placeholder loses its stale audio.
    stale = renderer.path("hotline", "en-US", "loss_done")
    shutil.copy(renderer.path("hotline", "en-US", "welcome"), stale)
    shutil.copy(stale.with_name("welcome.sha256"), stale.with_suffix(".sha256"))
    renderer.build(menu)
    assert not stale.exists() and not stale.with_suffix(".sha256").exists()


def test_each_script_in_a_prompt_is_read_by_a_voice_that_knows_it() -> None:
    def plan(text: str, language: str) -> list[tuple[str, str]]:
        return [(voice.name, words) for voice, words in speech_plan(text, language)]

    assert plan("您好，欢迎致电。For English, press 9.", "zh-CN") == [
        ("cmn-latn-pinyin", "您好，欢迎致电。"), ("en-us", "For English, press 9.")]
    assert plan("To speak to an agent, press 0. 中文服务请按9。", "en-US") == [
        ("en-us", "To speak to an agent, press 0. "), ("cmn-latn-pinyin", "中文服务请按9。")]
    assert plan("最后一位是X请按星号键。", "zh-CN") == [
        ("cmn-latn-pinyin", "最后一位是"), ("en-us", "X"), ("cmn-latn-pinyin", "请按星号键。")]


def test_a_failed_render_leaves_no_file_and_keeps_the_old_one(tmp_path: Path) -> None:
    target = tmp_path / "welcome.wav"
    with pytest.raises(RenderError, match="espeak-ng failed"):
        render_wav("hello", "xx-YY", target)
    assert list(tmp_path.iterdir()) == []
    target.write_bytes(b"old audio")
    with pytest.raises(RenderError):
        render_wav("hello", "xx-YY", target)
    assert list(tmp_path.iterdir()) == [target] and target.read_bytes() == b"old audio"


def test_cli_builds_every_published_menu_and_prints_the_summary(
        settings: Settings, hotline: Hotline, renderer: PromptRenderer) -> None:
    hotline.menus.publish(DEFAULT_MENU_FILE.read_text(encoding="utf-8").replace("name: hotline", "name: branch"),
                          published_by="test")
    result = CliRunner(env=cli_env(settings)).invoke(main, ["prompts", "build"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:4] == [
        "branch version 1:",
        "  zh-CN: rendered 28, unchanged 0, skipped (dynamic) 3",
        "  en-US: rendered 28, unchanged 0, skipped (dynamic) 3",
        "  rendered at call time: inquiry_result, loss_done, complaint_done",
    ]
    assert lines[4:7] == [
        "hotline version 1:",
        "  zh-CN: rendered 0, unchanged 28, skipped (dynamic) 3",
        "  en-US: rendered 0, unchanged 28, skipped (dynamic) 3",
    ]
    # The survey menu (published with the default one) adds 6 fixed and 2 dynamic prompts per language.
    assert lines[-1].startswith("total: rendered 68, unchanged 56, skipped (dynamic) 16, failed 0")
    assert renderer.path("branch", "en-US", "welcome").exists()


def test_cli_says_which_package_to_install_when_a_tool_is_missing(settings: Settings, tmp_path: Path) -> None:
    env = {**cli_env(settings), "PATH": str(tmp_path)}
    result = CliRunner(env=env).invoke(main, ["prompts", "build"])
    assert result.exit_code == 1
    assert "espeak-ng and sox not found on PATH" in result.stderr
    assert "apt-get install espeak-ng sox" in result.stderr


def _frames(path: Path) -> bytes:
    with wave.open(str(path), "rb") as audio:
        assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (8000, 1, 2)
        assert audio.getnframes() > 0.3 * 8000, f"{path} is too short"
        return audio.readframes(audio.getnframes())


def test_a_stored_menu_naming_paths_outside_the_prompts_folder_writes_and_deletes_nothing_there(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Defence in depth: the schema refuses such ids and codes, but a menu stored before it did must not walk out."""
    root, victim = tmp_path / "prompts", tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.wav").write_bytes(b"someone else's audio")
    (victim / "keep.sha256").write_text("beside it, as the clean-up looks for")
    menu = parse_menu("name: t\nlanguages: [zh-CN]\nstart: main\nnodes:\n"
                      "  main: {type: menu, prompt: {zh-CN: 请按一}, options: {'1': bye}, fallback: bye}\n"
                      "  bye: {type: hangup, prompt: {zh-CN: 再见}}\n")
    bye = menu.nodes["bye"]
    hostile = menu.model_copy(update={"nodes": {
        **menu.nodes,
        "../../../victim/x": bye,  # static: the renderer would write victim/x.wav and x.sha256
        "../../../victim/keep": bye.model_copy(update={"prompt": {"zh-CN": "{balance}"}}),  # dynamic: clean-up
        "lang": bye.model_copy(update={"prompt": {"zh-CN": "再见", "../../outside-lang": "bye"}}),
    }})

    report = PromptRenderer(root).build(hostile)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["prompts", "victim"]
    assert sorted(p.name for p in victim.iterdir()) == ["keep.sha256", "keep.wav"]
    assert (victim / "keep.wav").read_bytes() == b"someone else's audio"
    assert sorted(report.languages["zh-CN"].rendered) == ["bye", "lang", "main"]  # the rest of the menu is built
    assert set(report.languages["zh-CN"].failed) == {"../../../victim/x", "../../../victim/keep"}
    assert "outside the prompts folder" in report.languages["../../outside-lang"].failed["lang"]
    assert caplog.text.count("outside the prompts folder") == 3
    assert not [p for p in root.rglob("*") if not p.resolve().is_relative_to(root.resolve())]
