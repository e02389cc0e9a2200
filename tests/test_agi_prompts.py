"""Prompts filled per call on the Asterisk side: spoken once per text, even by many calls at once."""

from __future__ import annotations

import threading
import wave
from pathlib import Path

from agi_scripts.commands import Prompts
from ivr import actions as act
from ivr.loader import load_menu_file
from recordings.prompts import render_wav

MENU = load_menu_file(Path(__file__).resolve().parent.parent / "ivr" / "menus" / "hotline.yaml")


def test_twenty_calls_with_the_same_balance_render_it_once(tmp_path: Path) -> None:
    renders: list[str] = []

    def counting_render(text: str, language: str, path: Path) -> None:
        renders.append(text)
        render_wav(text, language, path)

    prompts = Prompts(tmp_path, MENU, counting_render)
    say = act.Say("您的余额为88.00元，卡片状态：正常。", "zh-CN", "inquiry_result")
    sounds: list[str | None] = []
    threads = [threading.Thread(target=lambda: sounds.append(prompts.sound(say))) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(renders) == 1
    assert len(set(sounds)) == 1 and sounds[0] is not None and "/dynamic/" in sounds[0]
    with wave.open(str(tmp_path / (sounds[0].removeprefix("hotline/") + ".wav"))) as audio:
        assert audio.getframerate() == 8000 and audio.getnframes() > 8000


def test_static_prompt_is_not_rendered_per_call(tmp_path: Path) -> None:
    prompts = Prompts(tmp_path, MENU, lambda *args: (_ for _ in ()).throw(AssertionError("rendered")))
    say = act.Say(MENU.nodes["main"].prompt["zh-CN"], "zh-CN", "main")
    assert prompts.sound(say) is None  # not built yet: logged and skipped, never rendered on the call path


def test_a_prompt_filled_per_call_in_a_path_like_language_is_never_written_outside_the_prompts(tmp_path: Path) -> None:
    # A menu stored before language codes were checked: its per-call prompt must not be spoken anywhere else.
    root = tmp_path / "prompts"
    root.mkdir()
    written: list[Path] = []
    prompts = Prompts(root, MENU, lambda text, language, path: written.append(path))
    say = act.Say("您的余额为88.00元。", "../..", "inquiry_result")
    assert prompts.sound(say) is None
    assert written == [] and not any(tmp_path.rglob("*.wav"))
