"""Menu prompts rendered to the audio Asterisk plays: espeak-ng speaks, sox makes 8 kHz mono WAV.

``<root>/<menu>/<lang>/<prompt_id>.wav`` with ``<prompt_id>.sha256`` beside it: the hash of the text,
voice and audio settings it was rendered from, so a build re-renders only what changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import string
import subprocess
import tempfile
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ivr.model import Menu
from recordings.tools import run_tool

log = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 8000
"""Asterisk's native ``.wav`` (slin) format: 8 kHz, mono, signed 16-bit."""
RENDER_TIMEOUT_S = 30.0
TOOLS = {"espeak-ng": "espeak-ng", "sox": "sox"}
"""Program -> the Debian package that installs it."""


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice and how fast it speaks (words per minute)."""

    name: str
    speed: int = 150


# Not "cmn"/"zh": in espeak-ng 1.51 (Debian 12) those read each character's pinyin as English
# ("好" -> "hao two"); cmn-Latn-pinyin speaks Mandarin. espeak-ng/espeak-ng#1236.
MANDARIN = Voice("cmn-latn-pinyin")
ENGLISH = Voice("en-us")
VOICES = {"zh-CN": MANDARIN, "en-US": ENGLISH}
SCRIPT_VOICES = {"han": MANDARIN, "latin": ENGLISH}
"""Who reads a run of another script inside a prompt (e.g. "For English, press 9." in a Chinese one)."""
_HAN = r"\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef"  # ideographs, CJK and full-width punctuation
_LATIN = r"A-Za-z\u00c0-\u024f"
_RUNS = re.compile(rf"(?P<han>[{_HAN}]+)|(?P<latin>[{_LATIN}]+)|[^{_HAN}{_LATIN}]+")
HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
"""A Chinese ideograph (not punctuation alone)."""

Segment = tuple[Voice, str]


def voice_for(language: str) -> Voice:
    """The voice for a menu language; espeak-ng knows most others by their lower-cased code."""
    return VOICES.get(language, Voice(language.lower()))


def speech_plan(text: str, language: str) -> list[Segment]:
    """The text cut where the script changes, each piece with the voice that can read it."""
    home = "han" if language.startswith("zh") else "latin"
    plan: list[Segment] = []
    for run in _RUNS.finditer(text):
        script = run.lastgroup  # None: digits, spaces, punctuation go with the run they sit in
        voice = voice_for(language) if script in (None, home) else SCRIPT_VOICES[script]
        if plan and (script is None or plan[-1][0] == voice):
            plan[-1] = (plan[-1][0], plan[-1][1] + run.group())
        else:
            plan.append((voice, run.group()))
    return plan or [(voice_for(language), text)]


class MissingTool(RuntimeError):
    """A program the renderer needs is not on PATH."""


class RenderError(RuntimeError):
    """espeak-ng or sox failed, or took too long, on one prompt."""


class OutsidePrompts(ValueError):
    """A menu, language or prompt id that would put a file outside the prompts folder (no menu passing the
    schema has one: this guards against one stored before the schema refused them)."""


def prompt_path(root: Path, menu: str, language: str, prompt_id: str) -> Path:
    """``<root>/<menu>/<language>/<prompt_id>.wav``; raises ``OutsidePrompts`` unless each part is one plain name
    and the file resolves inside ``root`` (so neither a write nor the clean-up beside it can leave the folder)."""
    parts = (menu, language, f"{prompt_id}.wav")
    path = root.joinpath(*parts)
    plain = all(part not in ("", ".", "..") and "/" not in part and "\\" not in part for part in parts)
    if not plain or not path.resolve().is_relative_to(root.resolve()):
        raise OutsidePrompts(f"prompt {menu}/{language}/{prompt_id} is outside the prompts folder: not written")
    return path


def require_tools() -> None:
    """Raise ``MissingTool`` naming the Debian package to install when espeak-ng or sox is missing."""
    missing = [program for program in TOOLS if shutil.which(program) is None]
    if missing:
        packages = " ".join(TOOLS[program] for program in missing)
        raise MissingTool(f"{' and '.join(missing)} not found on PATH: install with "
                          f"`apt-get install {packages}` (Debian package{'s' if len(missing) > 1 else ''} {packages})")


def render_wav(text: str, language: str, target: Path, timeout_s: float = RENDER_TIMEOUT_S) -> None:
    """Speak ``text`` into ``target`` as 8 kHz mono 16-bit WAV; ``target`` is replaced whole or not at all."""
    target.parent.mkdir(parents=True, exist_ok=True)
    plan = speech_plan(text, language)
    spoken = [_temp_wav(target, f"part{index}") for index in range(len(plan))]
    converted = _temp_wav(target, "8k")
    try:
        for (voice, words), part in zip(plan, spoken, strict=True):
            # Text on stdin, never argv: a prompt starting with "-" would read as an option.
            _run(["espeak-ng", "--stdin", "-v", voice.name, "-s", str(voice.speed), "-w", str(part)],
                 words, timeout_s)
        # sox joins the parts in order. -D: no dither, so the same text always gives the same bytes.
        _run(["sox", "-D", *map(str, spoken), "-r", str(SAMPLE_RATE_HZ), "-c", "1", "-b", "16",
              "-e", "signed-integer", str(converted)], None, timeout_s)
        converted.chmod(0o640)  # mkstemp makes it 0600; Asterisk reads it through HOTLINE_ASTERISK_GROUP (2750 folders)
        converted.replace(target)
    finally:
        for path in (*spoken, converted):
            path.unlink(missing_ok=True)


def _temp_wav(target: Path, tag: str) -> Path:
    # In the target's folder so the final rename is atomic; hidden so Asterisk never lists it.
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.{tag}.", suffix=".wav")
    os.close(fd)
    return Path(name)


def _run(command: list[str], stdin: str | None, timeout_s: float) -> None:
    try:
        done = run_tool(command, stdin.encode() if stdin is not None else None, timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise RenderError(f"{command[0]} took longer than {timeout_s:g}s") from exc
    if done.returncode:
        detail = done.stderr.decode(errors="replace").strip() or f"exit status {done.returncode}"
        raise RenderError(f"{command[0]} failed: {detail}")


def is_dynamic(text: str) -> bool:
    """True when the text holds a placeholder (``{balance}``, ``{reference:digits}``...) filled per call."""
    return any(name is not None for _, name, _, _ in string.Formatter().parse(text))


@dataclass
class LanguageReport:
    """What one build did for one language of one menu (prompt ids)."""

    rendered: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    dynamic: list[str] = field(default_factory=list)
    """Prompts with placeholders: rendered at call time, never here."""
    failed: dict[str, str] = field(default_factory=dict)
    """prompt id -> why it could not be rendered."""


@dataclass
class BuildReport:
    """What one build of one menu did, by language."""

    menu: str
    version: int
    languages: dict[str, LanguageReport] = field(default_factory=dict)

    def count(self, kind: str) -> int:
        """Total of ``rendered``, ``unchanged``, ``dynamic`` or ``failed`` over every language."""
        return sum(len(getattr(report, kind)) for report in self.languages.values())


@dataclass(frozen=True)
class _Job:
    prompt_id: str
    language: str
    text: str
    digest: str


class PromptRenderer:
    """Renders every static prompt of a menu under ``root``, skipping those whose hash is unchanged."""

    def __init__(self, root: Path, timeout_s: float = RENDER_TIMEOUT_S, workers: int | None = None) -> None:
        self.root, self.timeout_s = root, timeout_s
        self.workers = workers or min(8, os.cpu_count() or 1)

    def build(self, menu: Menu) -> BuildReport:
        """Render what changed since the last build of ``menu``; raises ``MissingTool`` first if need be."""
        require_tools()
        report = BuildReport(menu.name, menu.version, {lang: LanguageReport() for lang in menu.languages})
        jobs = []
        for prompt_id, texts in menu.prompts().items():
            for language, text in texts.items():
                done = report.languages.setdefault(language, LanguageReport())
                try:
                    job = self._job_for(menu.name, prompt_id, language, text, done)
                except OutsidePrompts as exc:
                    log.error("menu %s version %d: %s", menu.name, menu.version, exc)
                    done.failed[prompt_id] = str(exc)
                    continue
                if job:
                    jobs.append(job)
        with ThreadPoolExecutor(self.workers) as pool:
            for job, error in zip(jobs, pool.map(lambda j: self._render(menu.name, j), jobs), strict=True):
                _record(report.languages[job.language], job.prompt_id, error)
        return report

    def path(self, menu: str, language: str, prompt_id: str) -> Path:
        """Where the audio of one prompt lives (what the AGI channel checks before playing it)."""
        return prompt_path(self.root, menu, language, prompt_id)

    def _job_for(self, menu: str, prompt_id: str, language: str, text: str, report: LanguageReport) -> _Job | None:
        wav = self.path(menu, language, prompt_id)
        if is_dynamic(text):
            _forget(wav)
            report.dynamic.append(prompt_id)
            return None
        digest = content_hash(text, language)
        if wav.exists() and _read(wav.with_suffix(".sha256")) == digest:
            report.unchanged.append(prompt_id)
            return None
        return _Job(prompt_id, language, text, digest)

    def _render(self, menu: str, job: _Job) -> str | None:
        wav = self.path(menu, job.language, job.prompt_id)
        try:
            render_wav(_spoken(job.text), job.language, wav, self.timeout_s)
        except RenderError as exc:
            log.error("prompt %s/%s/%s not rendered: %s", menu, job.language, job.prompt_id, exc)
            return str(exc)
        _write_text(wav.with_suffix(".sha256"), job.digest)
        _write_text(wav.with_suffix(".txt"), job.text)  # what it says, for people (hotline call prints it)
        return None


def content_hash(text: str, language: str) -> str:
    """What a rendered file depends on: change any of it and the prompt is rendered again."""
    plan = [(asdict(voice), words) for voice, words in speech_plan(_spoken(text), language)]
    recipe = {"plan": plan, "rate_hz": SAMPLE_RATE_HZ, "channels": 1, "bits": 16, "dither": False}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _spoken(text: str) -> str:
    # "{{" in a static prompt is a literal brace, as the engine would say it.
    return string.Formatter().vformat(text, (), {})


def _record(report: LanguageReport, prompt_id: str, error: str | None) -> None:
    if error is None:
        report.rendered.append(prompt_id)
    else:
        report.failed[prompt_id] = error


def _forget(wav: Path) -> None:
    # A prompt that became dynamic: drop audio we rendered for its old static text (the .sha256
    # proves it was ours), or the AGI channel would keep playing the stale words.
    marker = wav.with_suffix(".sha256")
    if marker.exists():
        wav.unlink(missing_ok=True)
        marker.unlink()


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _write_text(target: Path, text: str) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    tmp.replace(target)


def summary_lines(report: BuildReport) -> list[str]:
    """What a build did, per language, and which prompts are left for call time."""
    lines = [f"{report.menu} version {report.version}:"]
    for language, done in report.languages.items():
        lines.append(f"  {language}: rendered {len(done.rendered)}, unchanged {len(done.unchanged)}, "
                     f"skipped (dynamic) {len(done.dynamic)}" + (f", failed {len(done.failed)}" if done.failed else ""))
    dynamic = list(dict.fromkeys(p for done in report.languages.values() for p in done.dynamic))
    if dynamic:
        lines.append(f"  rendered at call time: {', '.join(dynamic)}")
    for language, done in report.languages.items():
        lines.extend(f"  failed {language}/{prompt_id}: {why}" for prompt_id, why in done.failed.items())
    return lines


def write_placeholder_prompts(menu: Menu, root: Path, seconds: float = 0.1) -> None:
    """Short silent WAVs for every static prompt: for tests and benchmarks of the AGI channel,
    where what matters is that a file is there to play, not what it says."""
    for prompt_id, texts in menu.prompts().items():
        for language in texts:
            path = prompt_path(root, menu.name, language, prompt_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            with wave.open(str(path), "wb") as out:
                out.setnchannels(1)
                out.setsampwidth(2)
                out.setframerate(SAMPLE_RATE_HZ)
                out.writeframes(bytes(int(seconds * SAMPLE_RATE_HZ) * 2))
            path.with_suffix(".txt").write_text(texts[language], encoding="utf-8")
