"""Hostile menu files: YAML bombs, deep nesting, huge, binary, foreign tags, wrong types. Each is refused
with a problem naming the reason, through the library, the admin API and ``hotline menu validate``, and
the live menu stays. How quickly: ``bench/hostile_menus.py`` (speed is not asserted here)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from calls.menus import DEFAULT_MENU_FILE
from hotline.app import Hotline
from hotline.cli import main
from ivr.loader import MAX_MENU_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES, MenuError, load_menu_file, parse_menu
from ivr.validate import validate_menu
from store.models import MenuVersion
from tests.conftest import API_TOKEN, AUTH_TOKEN, PUBLIC_URL
from tests.fakes.twilio_caller import TwilioCaller

DEFAULT = DEFAULT_MENU_FILE.read_text(encoding="utf-8")
WELCOME = "您好，欢迎致电客户服务热线。For English, press 9."
PWNED = Path("/tmp/hotline-menu-pwned")


def billion_laughs(levels: int = 9) -> str:
    lines = ['lol0: &lol0 "lol"']
    lines += [f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 10)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def nested_blocks(depth: int) -> str:
    """``nodes: {a: {a: {...}}}`` written as indented block mappings, the way an editor would."""
    return "name: deep\nnodes:\n" + "".join("  " * (i + 1) + "a:\n" for i in range(depth)) + "  " * (depth + 1) + "x"


HOSTILE: dict[str, tuple[str | bytes, str]] = {
    # name: (document, what the refusal must say)
    "billion laughs": (billion_laughs(), "aliases and anchors are not allowed"),
    "alias inside the default menu": (DEFAULT.replace("next: main\n", "next: &m main\n", 1).replace(
        "    next: main\n", "    next: *m\n", 1), "aliases and anchors are not allowed"),
    "nested flow lists": ("name: x\nnodes: " + "[" * 50_000 + "]" * 50_000, f"nests deeper than {MAX_YAML_DEPTH}"),
    "nested flow maps": ("nodes: " + "{a: " * 20_000 + "1" + "}" * 20_000, f"nests deeper than {MAX_YAML_DEPTH}"),
    "nested block maps": (nested_blocks(200), f"nests deeper than {MAX_YAML_DEPTH}"),
    "unclosed brackets": ("nodes: " + "[" * (MAX_MENU_BYTES - 16), f"nests deeper than {MAX_YAML_DEPTH}"),
    "node flood": ("name: x\nnodes: [" + "1," * (MAX_MENU_BYTES // 2 - 32) + "1]", f"more than {MAX_YAML_NODES}"),
    "key flood": ("nodes: {" + ",".join(f"{i:x}" for i in range(MAX_YAML_NODES // 2 + 1)) + "}",
                  f"more than {MAX_YAML_NODES}"),
    "huge": ("name: x\ncomment: " + "y" * (MAX_MENU_BYTES + 1), "larger than 256 KiB"),
    "default menu padded past the limit": (DEFAULT + "#" * MAX_MENU_BYTES, "larger than 256 KiB"),
    "huge in multibyte characters": ("name: " + "菜" * (MAX_MENU_BYTES // 3 + 1), "larger than 256 KiB"),
    "python object": (f"name: !!python/object/apply:os.system ['touch {PWNED}']\n", "tag 'tag:yaml.org,2002:python"),
    "python name": ("start: !!python/name:os.system\n", "is not allowed in menus"),
    "custom tag": ("nodes: !menu {a: 1}\n", "tag '!menu' is not allowed"),
    "saved as GB18030": (DEFAULT.encode("gb18030"), "not UTF-8 text (byte"),
    "binary": (bytes(range(256)) * 8, "not UTF-8 text"),
    "NUL bytes": (b"name: x\x00\x00\x00\n", "unacceptable character #x0000"),
    "lone surrogate": ("name: \udc80\n", "not UTF-8 text"),
    "a list, not a mapping": ("- name\n- nodes\n", "a menu must be a YAML mapping"),
    "empty": ("", "a menu must be a YAML mapping"),
    "a plain string": ("hello", "a menu must be a YAML mapping"),
    "wrong types everywhere": (
        "name: [1, 2]\nlanguages: zh-CN\nstart: {a: 1}\nnodes: [welcome, main]\ndefaults: 7\n", "name:"),
    "node of the wrong type": (DEFAULT.replace("    type: say\n", "    type: 42\n", 1), "unknown node type 42"),
    "broken node flood": ("name: x\nlanguages: [zh-CN]\nstart: n0\nnodes:\n" + "".join(
        f"  n{i}: {{type: say, tx: x}}\n" for i in range(MAX_YAML_NODES // 6 - 10)), "and 9930 more problems"),
    "duplicate key": (DEFAULT.replace("start: welcome\n", "start: welcome\nstart: main\n"), "duplicate key 'start'"),
    # Node ids and language codes name prompt files: a path in either would write (and clean up) files anywhere.
    "node id walking out of the prompts folder": (DEFAULT.replace("welcome", "../../../../../../../tmp/x"),
                                                  "node id may use only letters, digits, '_', '-' and '.'"),
    "language code walking out of the prompts folder": (
        DEFAULT.replace("languages: [zh-CN, en-US]", "languages: [zh-CN, ../../..]").replace("en-US:", "../../..:"),
        "languages.1: language code '../../..' is not a language tag"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_the_library_refuses_each_hostile_menu_naming_why(name: str, tmp_path: Path) -> None:
    document, reason = HOSTILE[name]
    with pytest.raises(MenuError) as refused:
        parse_menu(document)
    assert reason in str(refused.value)
    file = tmp_path / "menu.yaml"
    file.write_bytes(document if isinstance(document, bytes) else document.encode("utf-8", "surrogatepass"))
    with pytest.raises(MenuError) as from_file:
        load_menu_file(file)
    assert reason in str(from_file.value)
    assert not PWNED.exists()


def test_limits_leave_room_for_real_menus() -> None:
    """The depth and node limits refuse no menu the byte limit lets through, written one key per line."""
    big = _generated_menu(MAX_MENU_BYTES - 1024)
    menu = parse_menu(big)
    validate_menu(menu)
    assert len(big.encode()) > MAX_MENU_BYTES * 0.9 and len(menu.nodes) > 1000


def test_a_huge_file_is_refused_without_being_read_whole(tmp_path: Path) -> None:
    file = tmp_path / "huge.yaml"
    with file.open("wb") as out:  # 2 GiB, sparse: a menu file is read only up to the size limit
        out.write(DEFAULT.encode())
        out.truncate(2 << 30)
    with pytest.raises(MenuError, match="larger than 256 KiB"):
        load_menu_file(file)


SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12) | st.dates()
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=6) | st.integers(), inner, max_size=3), max_leaves=8)
BASE = yaml.safe_load(DEFAULT)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, inner in items:
        found += [(*prefix, key), *_paths(inner, (*prefix, key))]
    return found


PATHS = _paths(BASE)


@settings(max_examples=150, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PATHS), VALUES), min_size=1, max_size=4))
def test_wrong_types_anywhere_in_the_default_menu_are_refused_or_accepted_never_crash(
    changes: list[tuple[tuple[Any, ...], Any]],
) -> None:
    document = copy.deepcopy(BASE)
    for path, value in changes:
        _put(document, path, value)
    try:
        validate_menu(parse_menu(yaml.safe_dump(document, allow_unicode=True)))
    except MenuError as exc:
        assert exc.problems and all(str(p) for p in exc.problems)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.binary(max_size=2000) | st.text(max_size=2000) | st.lists(st.sampled_from(
    ["[", "]", "{", "}", ":", "- ", ",", "&a ", "*a", "!!python/object:os.system ", "!x ", "? ", "|\n", "\n",
     "  ", "'", '"', "#", "%YAML 1.1\n", "---\n", "...\n", "nodes", "type: menu", "\x00", "\ufeff", "é"]),
    max_size=200).map("".join))
def test_arbitrary_bytes_or_text_is_a_menu_or_a_menu_error(document: str | bytes) -> None:
    try:
        validate_menu(parse_menu(document))
    except MenuError as exc:
        assert exc.problems


# -- through the admin API and the CLI ---------------------------------------------------------------

def _api(token_app: Any) -> Any:
    client = token_app.test_client()

    def call(method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        return client.open(path, method=method, json=body, headers={"Authorization": f"Bearer {API_TOKEN}"},
                           **kwargs)

    return call


TEXTS = {name: (document, reason) for name, (document, reason) in HOSTILE.items() if isinstance(document, str)}
"""The hostile documents JSON can carry (the API takes the menu as a JSON string)."""


def _api_reason(name: str) -> str:
    document, reason = TEXTS[name]
    if len(document.encode("utf-8", "surrogatepass")) > MAX_MENU_BYTES:
        return "a menu may be at most 256 KiB"  # refused before parsing
    return "surrogates not allowed" if name == "lone surrogate" else reason


def test_publishing_a_hostile_menu_is_refused_and_the_live_menu_stays(
    token_app: Any, hotline: Hotline, client: Any,
) -> None:
    api = _api(token_app)
    for name, (document, _) in TEXTS.items():
        published = api("POST", "/api/menus/hotline/publish", {"source": document})
        assert published.status_code == 400, name
        assert _api_reason(name) in published.get_json()["error"], name
        checked = api("POST", "/api/menus/hotline/check", {"source": document})
        assert checked.status_code == 400 or checked.get_json()["valid"] is False, name
    after = api("GET", "/api/menus/hotline").get_json()
    assert (after["live_version"], after["live_source"]) == (1, DEFAULT)
    with hotline.sql() as db:
        assert db.scalar(select(func.count()).select_from(MenuVersion).where(MenuVersion.menu == "hotline")) == 1
    caller = TwilioCaller(client, AUTH_TOKEN, PUBLIC_URL)
    caller.dial()
    assert caller.said()[0] == WELCOME


def test_a_body_past_the_menu_limit_is_a_413(token_app: Any) -> None:
    api = _api(token_app)
    reply = api("POST", "/api/menus/hotline/publish", {"source": "x" * (3 * MAX_MENU_BYTES)})
    assert reply.status_code == 413
    assert api("GET", "/api/menus/hotline").get_json()["live_version"] == 1


@settings(max_examples=60, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(source=st.text(max_size=500) | st.sampled_from([document for document, _ in TEXTS.values()]))
def test_the_menu_api_never_fails_on_any_source(token_app: Any, source: str) -> None:
    api = _api(token_app)
    checked = api("POST", "/api/menus/hotline/check", {"source": source})
    assert checked.status_code in (200, 400) and checked.is_json, checked.get_data(as_text=True)[:300]
    published = api("POST", "/api/menus/hotline/publish", {"source": source})
    assert published.status_code == 400 and "error" in published.get_json()
    assert api("GET", "/api/menus/hotline").get_json()["live_version"] == 1


@pytest.mark.parametrize("name", HOSTILE)
def test_cli_validate_refuses_each_hostile_file_with_its_reason(name: str, tmp_path: Path) -> None:
    document, reason = HOSTILE[name]
    file = tmp_path / "menu.yaml"
    file.write_bytes(document if isinstance(document, bytes) else document.encode("utf-8", "surrogatepass"))
    result = CliRunner().invoke(main, ["menu", "validate", str(file)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert result.output.startswith(f"{file}:") and reason in result.output


def _put(document: Any, path: tuple[Any, ...], value: Any) -> None:
    target = document
    try:
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
    except (KeyError, IndexError, TypeError):
        pass  # an earlier change replaced the container: nothing to put into


def _generated_menu(max_bytes: int) -> str:
    """A menu as large as ``max_bytes`` allows: a chain of menus, three keys onward and one back."""
    head = "name: big\nlanguages: [zh-CN, en-US]\nstart: m0\nnodes:\n"
    nodes = (max_bytes - len(head)) // len(_menu_node(99_999, 99_999).encode())  # the longest node, bound
    return head + "".join(_menu_node(i, nodes) for i in range(nodes))


def _menu_node(i: int, nodes: int) -> str:
    onward = (f'      "{k}": m{min(i + k, nodes - 1)}' for k in (1, 2, 3))
    return "\n".join([f"  m{i}:", "    type: menu", "    prompt:", f"      zh-CN: 第{i}层菜单，请按一到三。",
                      f"      en-US: Menu {i}, press one to three.", "    options:", *onward,
                      f'      "9": m{max(i - 1, 0)}', ""])
