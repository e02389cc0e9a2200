"""Every validation rule refuses a broken menu with the node and the reason; the default menu passes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from hotline.cli import main
from ivr.loader import MAX_MENU_BYTES, MenuError, load_menu_file, parse_menu
from ivr.validate import validate_menu

DEFAULT_MENU = Path(__file__).resolve().parent.parent / "ivr" / "menus" / "hotline.yaml"

BASE = {
    "name": "t",
    "languages": ["zh-CN", "en-US"],
    "start": "main",
    "nodes": {
        "main": {"type": "menu", "prompt": {"zh-CN": "按1", "en-US": "press 1"},
                 "options": {"1": "bye"}, "fallback": "bye"},
        "bye": {"type": "hangup", "prompt": {"zh-CN": "再见", "en-US": "bye"}},
    },
}


def problems_of(doc: dict | str) -> list[str]:
    text = doc if isinstance(doc, str) else yaml.safe_dump(doc, allow_unicode=True)
    with pytest.raises(MenuError) as refused:
        validate_menu(parse_menu(text))
    return [str(p) for p in refused.value.problems]


def with_nodes(**nodes: dict) -> dict:
    return {**BASE, "nodes": {**BASE["nodes"], **nodes}}


def test_default_menu_is_valid() -> None:
    menu = load_menu_file(DEFAULT_MENU)
    assert menu.languages == ["zh-CN", "en-US"]
    assert {"inquiry_card", "loss_card", "complaint_category", "agent_general"} <= menu.nodes.keys()


def test_unknown_target_names_node_and_key() -> None:
    doc = with_nodes(main={**BASE["nodes"]["main"], "options": {"1": "bye", "2": "nowhere"}})
    assert problems_of(doc) == ["node 'main': unknown target 'nowhere' for key 2"]


def test_unreachable_node() -> None:
    doc = with_nodes(orphan={"type": "say", "prompt": {"zh-CN": "x", "en-US": "x"}, "next": "bye"})
    assert problems_of(doc) == ["node 'orphan': unreachable from start node 'main'"]


def test_loop_without_caller_input() -> None:
    doc = with_nodes(
        main={**BASE["nodes"]["main"], "options": {"1": "a"}},
        a={"type": "say", "prompt": {"zh-CN": "a", "en-US": "a"}, "next": "b"},
        b={"type": "action", "service": "clock.business_hours", "results": {"open": "a", "closed": "bye"}},
    )
    assert any("loop without caller input: a -> b -> a" in p for p in problems_of(doc))


def test_loop_through_a_menu_is_fine() -> None:
    doc = with_nodes(main={**BASE["nodes"]["main"], "options": {"1": "a", "2": "bye"}},
                     a={"type": "say", "prompt": {"zh-CN": "a", "en-US": "a"}, "next": "main"})
    validate_menu(parse_menu(yaml.safe_dump(doc)))


def test_duplicate_key_in_a_menu_is_refused_with_its_line() -> None:
    text = yaml.safe_dump(BASE, allow_unicode=True).replace("      '1': bye\n", "      '1': bye\n      1: main\n")
    (problem,) = problems_of(text)
    assert "duplicate key '1'" in problem and "line" in problem


def test_duplicate_node_id_is_refused() -> None:
    text = yaml.safe_dump(BASE, allow_unicode=True) + ""
    text = text.replace("  bye:\n", "  bye:\n    type: hangup\n  bye:\n", 1)
    assert "duplicate key 'bye'" in problems_of(text)[0]


def test_prompt_missing_for_a_declared_language() -> None:
    doc = with_nodes(bye={"type": "hangup", "prompt": {"zh-CN": "再见"}})
    assert problems_of(doc) == ["node 'bye': prompt has no text for language 'en-US'"]


def test_prompt_missing_altogether() -> None:
    doc = with_nodes(main={k: v for k, v in BASE["nodes"]["main"].items() if k != "prompt"})
    assert "node 'main': prompt is missing" in problems_of(doc)


def test_unknown_service() -> None:
    doc = with_nodes(main={**BASE["nodes"]["main"], "options": {"1": "act"}},
                     act={"type": "action", "service": "bank.launder", "results": {"ok": "bye"}})
    assert problems_of(doc) == ["node 'act': unknown service 'bank.launder'"]


def test_unknown_skill() -> None:
    doc = with_nodes(main={**BASE["nodes"]["main"], "options": {"1": "q"}},
                     q={"type": "queue", "skills": ["astrology"]})
    assert problems_of(doc) == ["node 'q': unknown skill 'astrology'"]


def test_unknown_node_type_and_wrong_field_type() -> None:
    doc = with_nodes(bye={"type": "teleport"},
                     main={**BASE["nodes"]["main"], "timeout": "soon"})
    found = problems_of(doc)
    assert any(p.startswith("node 'bye'") and "unknown node type 'teleport'" in p for p in found)
    assert any(p.startswith("node 'main'") and "timeout" in p for p in found)


def test_sensitive_input_must_be_consumed_by_the_next_action() -> None:
    doc = with_nodes(
        main={**BASE["nodes"]["main"], "options": {"1": "pin"}},
        pin={"type": "input", "prompt": {"zh-CN": "密码", "en-US": "PIN"}, "store": "pin",
             "sensitive": True, "min_digits": 6, "max_digits": 6, "next": "bye"},
    )
    assert problems_of(doc) == ["node 'pin': sensitive input must lead straight to an action that uses 'pin'"]


def test_yaml_aliases_are_refused_so_no_billion_laughs() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b]\n"
    (problem,) = problems_of(bomb)
    assert "aliases and anchors are not allowed" in problem


def test_huge_menu_is_refused_before_parsing() -> None:
    (problem,) = problems_of("x: " + "y" * (MAX_MENU_BYTES + 1))
    assert "larger than" in problem


def test_cli_validate_default_menu_prints_summary() -> None:
    result = CliRunner().invoke(main, ["menu", "validate", str(DEFAULT_MENU)])
    assert result.exit_code == 0
    assert "valid menu 'hotline': 33 nodes" in result.output


def test_cli_validate_prints_one_line_per_problem_with_node_and_line(tmp_path: Path) -> None:
    broken = with_nodes(main={**BASE["nodes"]["main"], "options": {"1": "nowhere"}},
                        q={"type": "queue", "skills": ["astrology"]})
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken, allow_unicode=True))
    result = CliRunner().invoke(main, ["menu", "validate", str(path)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert any(f"{path}:" in line and "node 'main'" in line and "unknown target 'nowhere'" in line for line in lines)
    assert any("node 'q'" in line and "unknown skill 'astrology'" in line for line in lines)


def test_cli_show_prints_the_tree(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["menu", "show", "--file", str(DEFAULT_MENU)])
    assert result.exit_code == 0
    assert result.output.splitlines()[1].startswith("welcome [say]")
    assert "  next -> main [menu]" in result.output
    assert "key 1 -> inquiry_card [input]" in result.output


NODE_ID_RULE = "node id may use only letters, digits, '_', '-' and '.' (1 to 64, starting with a letter, digit or '_')"


@pytest.mark.parametrize("node_id", ["../../../../../../../tmp/x", "a/b", "..", ".hidden", "-x", "", "a b", "a\\b",
                                     "a" * 65, "é"])
def test_a_node_id_that_is_no_plain_name_is_refused_with_the_node_and_why(node_id: str) -> None:
    doc = with_nodes(main={**BASE["nodes"]["main"], "options": {"1": "bye", "2": node_id}},
                     **{node_id: {"type": "hangup", "prompt": {"zh-CN": "再见", "en-US": "bye"}}})
    where = f"node '{node_id}'" if node_id else "menu"  # an empty id names no node
    assert problems_of(doc) == [f"{where}: {NODE_ID_RULE}"]


@pytest.mark.parametrize("code", ["../../..", "zh/CN", "..", "zh_CN", "", "-en", "en-", "e", "x" * 9, "zh-CN/.."])
def test_a_language_code_that_is_no_language_tag_is_refused_wherever_it_is_used(code: str) -> None:
    rule = f"language code {code!r} is not a language tag such as zh-CN or en"
    listed = {**BASE, "languages": ["zh-CN", code],
              "nodes": {nid: {**node, "prompt": {**node["prompt"], code: "x"}} for nid, node in BASE["nodes"].items()}}
    assert sorted(problems_of(listed)) == [f"menu: languages.1: {rule}", f"node 'bye': prompt: {rule}",
                                           f"node 'main': prompt: {rule}"]
    switch = with_nodes(main={**BASE["nodes"]["main"], "options": {"1": "lang"}},
                        lang={"type": "language", "language": code, "next": "bye"})
    assert problems_of(switch) == [f"node 'lang': language: {rule}"]
    labelled = {**BASE, "labels": {"kind": {"a": {code: "x"}}}}
    assert problems_of(labelled) == [f"menu: labels.kind.a: {rule}"]


@pytest.mark.parametrize("code", ["zh-CN", "en", "en-US", "yue", "zh-Hans-CN", "cmn-latn-pinyin", "de-1996"])
def test_real_language_tags_and_todays_node_ids_are_accepted(code: str) -> None:
    doc = {**BASE, "languages": [code],
           "nodes": {"Main_menu-2.v1": {**BASE["nodes"]["main"], "prompt": {code: "x"}, "options": {"1": "9"},
                                     "fallback": "9"},
                     "9": {"type": "hangup", "prompt": {code: "x"}}}, "start": "Main_menu-2.v1"}
    validate_menu(parse_menu(yaml.safe_dump(doc)))
