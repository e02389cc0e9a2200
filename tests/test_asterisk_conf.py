"""asterisk_conf/ read the way Asterisk reads it: the contexts, FastAGI URLs, queues, endpoints and AMI
access the hotline relies on exist, agree with each other, and agree with the code's defaults."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from agi_scripts.hold import ANSWER_GOSUB, RECORD_HANDLER, HoldDeps
from agi_scripts.ivr_call import ASTERISK_LANGUAGES
from complaints.visit_calls import VisitCall
from hotline.settings import Settings
from workers.dialers import AmiConfig, AmiVisitDialer

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "asterisk_conf"
MENUS = ROOT / "ivr" / "menus"

CONTEXTS_THE_CODE_USES = ("hotline-inbound", "hotline-agents", "hotline-queues", "hotline-outbound")
"""inbound: the trunk; agents: pjsip endpoints; queues: transfers; outbound: AMI Originate of return visits."""
NOT_CONTEXTS = {"general", "globals"}
JUMPS = {"goto", "gotoif", "gosub", "gosubif"}


# -- Asterisk's ini-like format --------------------------------------------------------------------


@dataclass
class Section:
    name: str
    templates: list[str] = field(default_factory=list)
    is_template: bool = False
    items: list[tuple[str, str, int]] = field(default_factory=list)
    """``(key, value, line)`` in file order: order matters (ACLs, dialplan priorities)."""


SECTION_RE = re.compile(r"^\[([^\]]+)\](?:\(([^)]*)\))?$")


def strip_comment(line: str) -> str:
    """``;`` starts a comment unless escaped as ``\\;``."""
    out, i = [], 0
    while i < len(line):
        if line[i] == "\\" and line[i + 1:i + 2] == ";":
            out.append(";")
            i += 2
            continue
        if line[i] == ";":
            break
        out.append(line[i])
        i += 1
    return "".join(out).strip()


def parse_conf(text: str, source: str = "<text>") -> list[Section]:
    """Sections in file order; a name may repeat (pjsip.conf: endpoint, auth and aor named ``1001``)."""
    sections: list[Section] = []
    current: Section | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.lstrip().startswith(";--") or raw.lstrip().startswith("#"):
            raise ValueError(f"{source}:{number}: block comments and #include/#exec are not supported here")
        line = strip_comment(raw)
        if not line:
            continue
        header = SECTION_RE.match(line)
        if header:
            name, options = header.group(1).strip(), [o.strip() for o in (header.group(2) or "").split(",") if o.strip()]
            if "+" in options:  # [name](+): more lines for the section defined before
                current = next(s for s in reversed(sections) if s.name == name)
                continue
            current = Section(name, [o for o in options if o != "!"], "!" in options)
            sections.append(current)
            continue
        if current is None:
            raise ValueError(f"{source}:{number}: a setting outside any [section]: {raw!r}")
        if "=" not in line:
            raise ValueError(f"{source}:{number}: not 'key = value' nor 'key => value': {raw!r}")
        key, value = line.split("=", 1)
        current.items.append((key.strip(), value.removeprefix(">").strip(), number))
    return sections


def load(name: str) -> list[Section]:
    path = CONF / name
    return parse_conf(path.read_text(encoding="utf-8"), str(path))


def resolved(section: Section, sections: list[Section]) -> list[tuple[str, str]]:
    """The section's settings with its templates' first, as Asterisk copies them in."""
    out: list[tuple[str, str]] = []
    for name in section.templates:
        index = sections.index(section)
        template = next((s for s in sections[:index] if s.name == name), None)
        assert template is not None, f"[{section.name}] uses template {name!r}, which is not defined above it"
        out += resolved(template, sections)
    return out + [(k, v) for k, v, _ in section.items]


def value(settings: list[tuple[str, str]], key: str) -> str | None:
    """The last value of ``key`` (later lines override template lines)."""
    found = [v for k, v in settings if k == key]
    return found[-1] if found else None


def values(settings: list[tuple[str, str]], key: str) -> list[str]:
    return [v for k, v in settings if k == key]


# -- the dialplan ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    context: str
    exten: str
    priority: str
    app: str
    args: tuple[str, ...]
    line: int


def split_args(text: str) -> list[str]:
    """Comma-separated application arguments; commas inside (), [], {} and quotes do not split."""
    args, depth, quoted, start = [], 0, False, 0
    for i, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            args.append(text[start:i].strip())
            start = i + 1
    return [*args, text[start:].strip()] if text.strip() else args


APP_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)\s*(?:\((.*)\))?$", re.DOTALL)


@dataclass
class Dialplan:
    steps: list[Step]
    includes: dict[str, list[str]]

    @property
    def contexts(self) -> set[str]:
        return set(self.includes)

    def in_context(self, context: str) -> list[Step]:
        return [s for s in self.steps if s.context == context]

    def calls(self, app: str, context: str | None = None) -> list[Step]:
        return [s for s in self.steps if s.app.lower() == app.lower() and context in (None, s.context)]

    def handles(self, context: str, exten: str, seen: frozenset[str] = frozenset()) -> bool:
        """Whether dialling ``exten`` in ``context`` finds an extension (includes searched too)."""
        if context in seen or context not in self.includes:
            return False
        if any(matches(s.exten, exten) for s in self.in_context(context)):
            return True
        return any(self.handles(inc, exten, seen | {context}) for inc in self.includes[context])


def parse_dialplan(sections: list[Section]) -> Dialplan:
    steps: list[Step] = []
    includes: dict[str, list[str]] = {}
    for section in sections:
        if section.name in NOT_CONTEXTS or section.is_template:
            continue
        includes.setdefault(section.name, [])
        exten: str | None = None
        for key, val, line in section.items:
            if key == "include":
                includes[section.name].append(val)
                continue
            if key == "exten":
                exten, val = (part.strip() for part in val.split(",", 1))
            elif key != "same":
                raise AssertionError(f"extensions.conf:{line}: unexpected {key!r} in [{section.name}]")
            assert exten is not None, f"extensions.conf:{line}: 'same =>' before any 'exten =>'"
            priority, call = (part.strip() for part in val.split(",", 1))
            app = APP_RE.match(call)
            assert app, f"extensions.conf:{line}: not an application call: {call!r}"
            steps.append(Step(section.name, exten, priority, app.group(1), tuple(split_args(app.group(2) or "")), line))
    return Dialplan(steps, includes)


def matches(pattern: str, exten: str) -> bool:
    """Asterisk extension matching: a literal, or ``_`` with X Z N [..] . ! (dashes are eye candy)."""
    if not pattern.startswith("_"):
        return pattern.replace("-", "") == exten.replace("-", "")
    regex, i, body = "", 0, pattern[1:]
    while i < len(body):
        char = body[i]
        if char == "[":
            end = body.index("]", i)
            regex += "[" + body[i + 1:end] + "]"
            i = end + 1
            continue
        regex += {"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]", ".": ".+", "!": ".*", "-": ""}.get(
            char.upper(), re.escape(char))
        i += 1
    return re.fullmatch(regex, exten) is not None


def jump_targets(step: Step) -> list[tuple[str, str]]:
    """``(context, exten)`` that a Goto/Gosub (or the If forms) names; same-context jumps name none."""
    if step.app.lower() not in JUMPS:
        return []
    labels = [",".join(step.args)]
    if step.app.lower().endswith("if"):
        branches = labels[0].split("?", 1)[1]
        labels = [b for b in branches.split(":") if b]
    out = []
    for label in labels:
        parts = [p.strip() for p in label.split(",")]
        if len(parts) == 3:
            out.append((parts[0], parts[1]))
    return out


# -- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dialplan() -> Dialplan:
    return parse_dialplan(load("extensions.conf"))


@pytest.fixture(scope="module")
def pjsip() -> list[Section]:
    return load("pjsip.conf")


def of_type(sections: list[Section], kind: str, templates: bool = False) -> dict[str, list[tuple[str, str]]]:
    """pjsip objects of one type (endpoint, auth, aor, ...) by name, templates resolved."""
    out = {}
    for s in sections:
        settings = resolved(s, sections)
        if value(settings, "type") == kind and (templates or not s.is_template):
            out[s.name if not s.is_template else f"{s.name}(!)"] = settings
    return out


def default(name: str) -> object:
    return Settings.model_fields[name].default


def fastagi(path: str) -> str:
    return f"agi://{default('agi_host')}:{default('agi_port')}/{path}"


# -- the parser itself -----------------------------------------------------------------------------


def test_the_parser_reads_templates_arrows_and_comments() -> None:
    sections = parse_conf(
        "[general]\nstatic=yes ; a comment\n"
        "[tpl](!)\ntype = endpoint\nallow = ulaw\n"
        "[1001](tpl)\nallow = alaw ; later wins\npassword = a\\;b\n"
        "[1001]\ntype => aor\n"
        "[1001](+)\nmax_contacts = 1\n"
    )
    assert [(s.name, s.is_template, s.templates) for s in sections] == [
        ("general", False, []), ("tpl", True, []), ("1001", False, ["tpl"]), ("1001", False, [])]
    endpoint = resolved(sections[2], sections)
    assert value(endpoint, "type") == "endpoint" and value(endpoint, "allow") == "alaw"
    assert value(endpoint, "password") == "a;b"
    assert resolved(sections[3], sections) == [("type", "aor"), ("max_contacts", "1")]
    with pytest.raises(ValueError):
        parse_conf("key = value\n")

    plan = parse_dialplan(parse_conf(
        "[a]\ninclude => b\nexten => _1XX,1,Set(X=${IF($[1 = 1]?a,b:c)})\n same => n,Goto(b,s,1)\n"
        "[b]\nexten => s,1,GotoIf($[${X} = 1]?a,100,1:b,s,1)\n"))
    assert plan.steps[0].args == ("X=${IF($[1 = 1]?a,b:c)}",)
    assert plan.handles("a", "155") and plan.handles("a", "s") and not plan.handles("a", "1555")
    assert jump_targets(plan.steps[1]) == [("b", "s")]
    assert jump_targets(plan.steps[2]) == [("a", "100"), ("b", "s")]
    assert matches("_100[1-4]", "1004") and not matches("_100[1-4]", "1005")
    assert matches("_+8695555", "+8695555") and matches("_X.", "95555") and not matches("_X.", "9")


# -- extensions.conf -------------------------------------------------------------------------------


@pytest.mark.parametrize("context", CONTEXTS_THE_CODE_USES)
def test_every_context_the_code_uses_exists(dialplan: Dialplan, context: str) -> None:
    assert context in dialplan.contexts
    assert dialplan.in_context(context), f"[{context}] has no extensions"


def test_inbound_answers_in_chinese_and_runs_the_default_menu_over_fastagi(dialplan: Dialplan) -> None:
    agi = dialplan.calls("AGI", "hotline-inbound")
    assert agi, "hotline-inbound never calls the FastAGI server"
    expected = fastagi(str(default("menu_name")))  # agi://127.0.0.1:4573/hotline
    for step in agi:
        assert step.args[0] == expected, f"extensions.conf:{step.line}"
        # The extension answers and sets a language the AGI channel knows before the menu starts.
        before = [s for s in dialplan.in_context("hotline-inbound") if s.exten == step.exten and s.line < step.line]
        assert any(s.app == "Answer" for s in before), f"extensions.conf:{step.line}: AGI before Answer()"
        languages = [s.args[0].split("=", 1)[1] for s in before if s.app == "Set" and s.args[0].startswith("CHANNEL(language)=")]
        assert languages and ASTERISK_LANGUAGES.get(languages[-1]) == "zh-CN"
    assert dialplan.handles("hotline-inbound", "95555")


def test_the_hotline_number_reaches_the_menu_from_the_trunk_context(dialplan: Dialplan) -> None:
    assert dialplan.handles("hotline-trunk", "95555")
    targets = {t for step in dialplan.in_context("hotline-trunk") for t in jump_targets(step)}
    assert targets == {("hotline-inbound", "95555")}


def test_outbound_return_visits_run_the_survey_script(dialplan: Dialplan) -> None:
    agi = dialplan.calls("AGI", "hotline-outbound")
    assert agi, "hotline-outbound never calls the FastAGI server"
    for step in agi:
        url = urlsplit(step.args[0])
        assert f"{url.scheme}://{url.netloc}{url.path}" == fastagi("survey"), f"extensions.conf:{step.line}"
        # The channel variables AmiVisitDialer's Originate sets (workers/dialers.py).
        assert parse_qs(url.query) == {"visit": ["${HOTLINE_VISIT}"], "attempt": ["${HOTLINE_ATTEMPT}"],
                                       "token": ["${HOTLINE_VISIT_TOKEN}"]}, f"extensions.conf:{step.line}"
    assert dialplan.handles("hotline-outbound", "s"), "AMI Originate uses Exten=s"
    languages = [s.args[0] for s in dialplan.calls("Set", "hotline-outbound") if s.args[0].startswith("CHANNEL(language)=")]
    assert languages and "${HOTLINE_LANGUAGE}" in languages[0], "the survey starts in the language the dialer set"
    # Every HOTLINE_* variable the context reads is one the dialer's Originate sets.
    dialer = AmiVisitDialer(AmiConfig(host="127.0.0.1", port=5038, username="hotline", secret="x"))
    headers = dialer.originate_headers(VisitCall(visit_id=1, attempt=1, number="13800138000", language="zh-CN",
                                                 token="one-time"))
    set_by_dialer = {str(v).split("=", 1)[0] for k, v in headers if k == "Variable"}
    read = {name for step in dialplan.in_context("hotline-outbound") for arg in step.args
            for name in re.findall(r"\$\{(HOTLINE_[A-Z_]+)\}", arg)}
    assert read - {"HOTLINE_AGI_SECRET"} == set_by_dialer == {"HOTLINE_VISIT", "HOTLINE_ATTEMPT", "HOTLINE_LANGUAGE",
                                                              "HOTLINE_VISIT_TOKEN"}
    assert dict(headers)["Context"] == "hotline-outbound" and dict(headers)["Exten"] == "s"


def test_every_fastagi_url_points_at_the_hotline(dialplan: Dialplan) -> None:
    steps = dialplan.calls("AGI")
    assert steps
    for step in steps:
        assert step.args[0].startswith(fastagi("")), f"extensions.conf:{step.line}: {step.args[0]}"


def test_every_fastagi_call_passes_the_shared_secret_set_once_in_globals(dialplan: Dialplan) -> None:
    """Issue 17: the hotline runs no FastAGI script without the secret as AGI()'s first argument."""
    steps = dialplan.calls("AGI")
    assert steps
    for step in steps:
        assert list(step.args[1:]) == ["${HOTLINE_AGI_SECRET}"], f"extensions.conf:{step.line}: {step.args}"
    (globals_,) = [s for s in load("extensions.conf") if s.name == "globals"]
    assert value([(k, v) for k, v, _ in globals_.items], "HOTLINE_AGI_SECRET") == "change-me-agi-secret", \
        "one place to set it, marked change-me like the other secrets"


def test_every_jump_and_include_lands_on_an_existing_extension(dialplan: Dialplan) -> None:
    for context, included in dialplan.includes.items():
        for name in included:
            assert name in dialplan.contexts, f"[{context}] includes unknown context {name!r}"
    jumps = [(step, target) for step in dialplan.steps for target in jump_targets(step)]
    assert jumps
    for step, (context, exten) in jumps:
        assert context in dialplan.contexts, f"extensions.conf:{step.line}: no context {context!r}"
        assert dialplan.handles(context, exten), f"extensions.conf:{step.line}: no {exten!r} in [{context}]"


# -- the router's queues ---------------------------------------------------------------------------


def menu_skills() -> set[str]:
    """The skills the shipped menus queue callers for."""
    skills = set()
    for path in MENUS.glob("*.yaml"):
        for node in (yaml.safe_load(path.read_text(encoding="utf-8")).get("nodes") or {}).values():
            if node.get("type") == "queue":
                skills |= set(node["skills"])
    return skills


def test_every_menu_skill_can_be_transferred_to_through_the_router(dialplan: Dialplan) -> None:
    steps = dialplan.calls("AGI", "hotline-queues")
    by_exten = {step.exten: parse_qs(urlsplit(step.args[0]).query) for step in steps}
    assert set(by_exten) == menu_skills() == {"inquiry", "loss", "complaint", "general"}
    for exten, query in by_exten.items():
        assert query["skill"] == [exten]
    assert all(int(by_exten["loss"]["priority"][0]) > int(q["priority"][0]) for e, q in by_exten.items() if e != "loss")
    assert not dialplan.calls("Queue"), "app_queue is not used: the router holds callers"


def test_the_answer_gosub_reports_the_pick_up_and_returns(dialplan: Dialplan) -> None:
    steps = dialplan.in_context(ANSWER_GOSUB)
    assert [step.app for step in steps] == ["AGI", "Return"]
    assert steps[0].args[0] == fastagi("agent-answered?call=${ARG1}&agent=${ARG2}")


def test_the_record_handler_starts_one_stereo_mixmonitor_and_returns(dialplan: Dialplan) -> None:
    steps = dialplan.in_context(RECORD_HANDLER)
    assert [step.app for step in steps] == ["MixMonitor", "Return"]
    # One stereo file (D: interleaved, hence .raw), at the path the hold loop put in the Dial's b() option.
    assert steps[0].args == ("${ARG1}.raw", "D")


def test_hold_music_class_exists() -> None:
    classes = {s.name for s in load("musiconhold.conf") if s.name != "general"}
    assert HoldDeps.__dataclass_fields__["music_class"].default in classes


# -- pjsip.conf ------------------------------------------------------------------------------------


def test_every_endpoint_lands_in_an_existing_context_with_its_auth_and_aor(
    dialplan: Dialplan, pjsip: list[Section]
) -> None:
    endpoints = of_type(pjsip, "endpoint", templates=True)
    auths, aors, transports = of_type(pjsip, "auth"), of_type(pjsip, "aor"), of_type(pjsip, "transport")
    assert {"1001", "1002", "1003", "1004"} <= set(endpoints)
    assert any(value(s, "context") == "hotline-inbound" for n, s in endpoints.items() if n.endswith("(!)")), \
        "no trunk template lands in hotline-inbound"
    for name, settings in endpoints.items():
        assert value(settings, "context") in dialplan.contexts, f"endpoint {name}: context {value(settings, 'context')!r}"
        assert value(settings, "transport") in transports, f"endpoint {name}"
        if name.endswith("(!)"):
            continue
        for ref in (value(settings, "auth") or "").split(","):
            assert ref.strip() in auths, f"endpoint {name}: no auth {ref!r}"
        for ref in (value(settings, "aors") or "").split(","):
            assert ref.strip() in aors, f"endpoint {name}: no aor {ref!r}"


def test_agents_reach_each_other_by_extension(dialplan: Dialplan, pjsip: list[Section]) -> None:
    agents = [n for n, s in of_type(pjsip, "endpoint").items() if value(s, "context") == "hotline-agents"]
    assert agents
    for name in agents:
        assert dialplan.handles("hotline-agents", name), f"agent {name} cannot be dialled"
    logins = {step.args[0] for step in dialplan.calls("AGI", "hotline-agents")}
    assert {urlsplit(url).path for url in logins} == {"/agent-login"}


def test_sip_listens_on_udp_5060(pjsip: list[Section]) -> None:
    transports = of_type(pjsip, "transport")
    assert [(value(t, "protocol"), value(t, "bind")) for t in transports.values()] == [("udp", "0.0.0.0:5060")]


# -- manager.conf ----------------------------------------------------------------------------------


def acl_allows(settings: list[tuple[str, str]], address: str) -> bool:
    """Asterisk's ast_apply_ha: allowed unless a rule matches; the last matching rule decides."""
    allowed, ip = True, ipaddress.ip_address(address)
    for key, val in settings:
        if key in ("permit", "deny") and ip in ipaddress.ip_network(val, strict=False):
            allowed = key == "permit"
    return allowed


def test_ami_listens_on_loopback_and_admits_only_loopback() -> None:
    sections = load("manager.conf")
    general = next(resolved(s, sections) for s in sections if s.name == "general")
    assert value(general, "enabled") == "yes"
    assert value(general, "bindaddr") == "127.0.0.1"
    assert value(general, "port") == "5038"
    users = {s.name: resolved(s, sections) for s in sections if s.name != "general" and not s.is_template}
    assert "hotline" in users
    for name, settings in users.items():
        assert acl_allows(settings, "127.0.0.1"), f"AMI user {name} is refused from loopback"
        for outsider in ("10.0.0.7", "192.168.1.20", "172.16.0.1", "203.0.113.9"):
            assert not acl_allows(settings, outsider), f"AMI user {name} admits {outsider}"
        assert "originate" in (value(settings, "write") or "").split(","), f"AMI user {name} cannot Originate"
