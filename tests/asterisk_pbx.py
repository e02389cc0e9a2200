"""A real Asterisk 22 (built from ../shared/peers by scripts/_asterisk.sh) for end-to-end tests.

The project's ``asterisk_conf/`` is installed the way its README tells an admin (files copied, the FastAGI
address changed with the README's ``sed``, prompts linked under ``sounds/hotline``), with only what a
test run must change besides: its own folders and ports, the AMI secret, and a test dialplan included at
the end. Callers are Local channels: the IVR runs on ``;2`` (``hotline-inbound``), the test types keys on
``;1`` with AMI ``PlayDTMF`` (200 ms tones) only after the prompt they answer has started, as a person does.
What the caller heard comes from Asterisk itself: the ``AGIExecStart`` events of the IVR channel.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from workers.ami import Message, parse_message

ROOT = Path(__file__).resolve().parents[1]
SIPP = Path(__file__).resolve().parent / "sipp"
PREFIX = Path(os.environ.get("HOTLINE_ASTERISK_PREFIX", "/var/cache/hotline-peers/asterisk-22"))
AMI_USER, AMI_SECRET = "tests", "tests-secret"
HOTLINE_AMI_SECRET = "hotline-test-secret"
HOTLINE_AGI_SECRET = "hotline-test-fastagi-secret-0123456789"
"""The FastAGI shared secret, set in extensions.conf's [globals] as the README's step 2 does."""
TONE_S, GAP_S = 0.2, 0.1
"""A human pace: 200 ms tones, 100 ms apart."""

TEST_DIALPLAN = """
; Test-only contexts (tests/asterisk_pbx.py); the project's dialplan above is untouched.
[test-caller]
; the caller's own side of a Local channel: it only listens; the test types with PlayDTMF
exten => s,1,Answer()
 same => n,Wait(3600)
; the caller speaks for 3 s, then is silent (the test sends them here with AMI Redirect)
; the caller types ${KEYS} on their phone: 200 ms tones, 100 ms apart (a human pace), then says so
exten => type,1,SendDTMF(${KEYS},${GAP_MS},${TONE_MS})
 same => n,UserEvent(Typed)
 same => n,Wait(3600)
exten => speak,1,Playback(hotline-test/speech)
 same => n,UserEvent(Spoke)
 same => n,Playback(hotline-test/silence)
 same => n,Wait(3600)

[test-plain-agi]
; plain AGI, as the README has an admin set it up (hotline agi-script install)
exten => 95555,1,Answer()
 same => n,Set(CHANNEL(language)=zh)
 same => n,AGI(hotline-agi)
 same => n,Hangup()

[test-agents]
; agents on Local channels: one who answers and talks for ${TALK} s (default 2), one who never answers
exten => answer,1,Answer()
 same => n,Wait(${IF($["${TALK}" = ""]?2:${TALK})})
 same => n,Hangup()
exten => _talk.,1,Answer()
 same => n,Wait(${EXTEN:4})
 same => n,Hangup()
exten => ring,1,Ringing()
 same => n,Wait(3600)
; an agent who talks all along (a steady 1500 Hz tone: their voice) and hangs up after ${EXTEN:5} s;
; voice from the answer on, as a phone's RTP (Answer's 'i': no 500 ms wait for media a Local channel never sends)
exten => _voice.,1,Answer(,i)
 same => n,Set(TIMEOUT(absolute)=${EXTEN:5})
 same => n,Playback(hotline-test/agent-voice)
 same => n,Wait(3600)

[test-customers]
; a return-visit customer: answers, waits for the survey question, then rates with the digits in ${RATE}
exten => _X.,1,Answer()
 same => n,Wait(3600)
"""

WITHOUT_THE_SECRET = """
[test-no-secret]
; a dialplan that does not pass the FastAGI secret (1), or passes another one (2): refused by the hotline
exten => 1,1,Answer()
 same => n,AGI(agi://127.0.0.1:{port}/agent-login?action=logout)
 same => n,Hangup()
exten => 2,1,Answer()
 same => n,AGI(agi://127.0.0.1:{port}/agent-login?action=logout,not-the-secret-0123456789)
 same => n,Hangup()
"""


def available() -> str | None:
    """None when the real Asterisk can run here, else why not."""
    if not (PREFIX / "sbin" / "asterisk").exists():
        return (f"no Asterisk built in {PREFIX}: run ./scripts/test with ../shared/peers beside the clone "
                "(or set HOTLINE_ASTERISK_PREFIX)")
    if not shutil.which("sox"):
        return "sox is needed for the beep and hold music"
    if not shutil.which("sipp"):
        return "sipp (Debian's sip-tester) plays the agents' SIP phones"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Ami:
    """A test's AMI session: every event kept in order, actions answered by ActionID."""

    def __init__(self, port: int) -> None:
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self._sock.recv(100)  # the greeting line
        self._sock.settimeout(None)
        self.events: list[Message] = []
        self.by_uniqueid: dict[str, list[Message]] = {}
        """The same events per channel: a caller looks through its own only (hundreds of callers at once)."""
        self._responses: dict[str, Message] = {}
        self._changed = threading.Condition()
        self._ids = itertools.count(1)
        self._send_lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        reply = self.action("Login", Username=AMI_USER, Secret=AMI_SECRET)
        assert reply.get("response") == "Success", reply

    def action(self, name: str, timeout_s: float = 10, **fields: str) -> Message:
        action_id = f"t{next(self._ids)}"
        lines = [f"Action: {name}", f"ActionID: {action_id}", *(f"{k}: {v}" for k, v in fields.items())]
        with self._send_lock:
            self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        with self._changed:
            if not self._changed.wait_for(lambda: action_id in self._responses, timeout_s):
                raise TimeoutError(f"no AMI response to {name}")
            return self._responses.pop(action_id)

    def wait_for(self, match: Callable[[Message], bool], timeout_s: float = 20, after: int = 0,
                 uniqueid: str | None = None) -> Message:
        """The first event from index ``after`` on (or of channel ``uniqueid``) that matches; waits for it."""
        def found() -> Message | None:
            events = self.events[after:] if uniqueid is None else self.by_uniqueid.get(uniqueid, [])
            return next((e for e in events if match(e)), None)
        with self._changed:
            if not self._changed.wait_for(lambda: found() is not None, timeout_s):
                raise TimeoutError("AMI event not seen in time")
            event = found()
            assert event is not None
            return event

    def count(self, match: Callable[[Message], bool], uniqueid: str) -> int:
        with self._changed:
            return sum(1 for e in self.by_uniqueid.get(uniqueid, []) if match(e))

    def wait_count(self, match: Callable[[Message], bool], uniqueid: str, count: int, timeout_s: float) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: sum(1 for e in self.by_uniqueid.get(uniqueid, []) if match(e))
                                          >= count, timeout_s):
                raise TimeoutError(f"fewer than {count} matching events on {uniqueid}")

    def close(self) -> None:
        try:
            self.action("Logoff", timeout_s=2)
        except (OSError, TimeoutError):
            pass
        self._sock.close()

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = self._sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b"\r\n\r\n" in buffer:
                block, buffer = buffer.split(b"\r\n\r\n", 1)
                message = parse_message(block.decode("utf-8", "replace"))
                with self._changed:
                    if "response" in message and "actionid" in message:
                        self._responses[message["actionid"]] = message
                    else:
                        self.events.append(message)
                        if "uniqueid" in message:
                            self.by_uniqueid.setdefault(message["uniqueid"], []).append(message)
                    self._changed.notify_all()


class RealAsterisk:
    """One Asterisk process with its own folders and ports; the project's configuration installed."""

    def __init__(self, folder: Path, agi_port: int, prompts: Path) -> None:
        self.folder, self.agi_port, self.prompts = folder, agi_port, prompts
        self.sip_port, self.ami_port = free_port(), free_port()
        self.etc, self.data, self.agi_bin = folder / "etc", folder / "lib", folder / "agi-bin"
        self.log = folder / "log" / "messages"
        self.proc: subprocess.Popen[bytes] | None = None
        self.ami: Ami | None = None
        self._calls = itertools.count(1)

    # -- install, as asterisk_conf/README.md says -------------------------------------------------------
    def install(self) -> None:
        for sub in ("etc", "lib/sounds", "lib/moh", "spool", "run", "log", "agi-bin"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        for conf in (ROOT / "asterisk_conf").glob("*.conf"):  # step 1: copy over the stock files
            shutil.copy(conf, self.etc / conf.name)
        # step 2 (secrets), step 3 (the FastAGI address, with the README's own sed), and this run's ports
        self._edit("manager.conf", [("change-me-ami-secret", HOTLINE_AMI_SECRET), ("port = 5038", f"port = {self.ami_port}"),
                                    ("[general]\n", "[general]\ntimestampevents = yes\n")])
        subprocess.run(["sed", "-i", f"s#agi://127.0.0.1:4573/#agi://127.0.0.1:{self.agi_port}/#",
                        str(self.etc / "extensions.conf")], check=True)
        subprocess.run(["sed", "-i", f"s#^HOTLINE_AGI_SECRET=change-me-agi-secret#HOTLINE_AGI_SECRET={HOTLINE_AGI_SECRET}#",
                        str(self.etc / "extensions.conf")], check=True)
        self._edit("pjsip.conf", [("bind = 0.0.0.0:5060", f"bind = 127.0.0.1:{self.sip_port}")])
        with (self.etc / "manager.conf").open("a") as out:
            out.write(f"\n[{AMI_USER}]\nsecret = {AMI_SECRET}\ndeny = 0.0.0.0/0.0.0.0\n"
                      "permit = 127.0.0.1/255.255.255.255\nread = all\nwrite = all\n")
        with (self.etc / "extensions.conf").open("a") as out:
            out.write('\n#include "extensions_tests.conf"\n')
        (self.etc / "extensions_tests.conf").write_text(TEST_DIALPLAN + WITHOUT_THE_SECRET.format(port=self.agi_port))
        os.symlink(self.prompts, self.data / "sounds" / "hotline")  # step 4: the prompts
        # Asterisk's XML documentation lives in its data folder; config types without it fail to load.
        os.symlink(PREFIX / "var" / "lib" / "asterisk" / "documentation", self.data / "documentation")
        # Asterisk ships no sounds here: a beep for RECORD FILE ... BEEP and hold music for class default.
        _sox(["-n", "-r", "8000", "-c", "1", "-b", "16", str(self.data / "sounds" / "beep.wav"),
              "synth", "0.25", "sine", "1000", "vol", "0.5"])
        _sox(["-n", "-r", "8000", "-c", "1", "-b", "16", str(self.data / "moh" / "hold.wav"),
              "synth", "4", "sine", "440", "sine", "554", "vol", "0.2"])
        # What a caller says into a complaint: 3 s of a voice-like tone, then 15 s of silence.
        (self.data / "sounds" / "hotline-test").mkdir()
        _sox(["-n", "-r", "8000", "-c", "1", "-b", "16", str(self.data / "sounds" / "hotline-test" / "speech.wav"),
              "synth", "3", "sine", "300-900", "vol", "0.6"])
        _sox(["-n", "-r", "8000", "-c", "1", "-b", "16", str(self.data / "sounds" / "hotline-test" / "silence.wav"),
              "trim", "0", "15"])
        _sox(["-n", "-r", "8000", "-c", "1", "-b", "16", str(self.data / "sounds" / "hotline-test" / "agent-voice.wav"),
              "synth", "30", "sine", "1500", "vol", "0.3"])
        self._write_own_files()

    def _write_own_files(self) -> None:
        f = self.folder
        (self.etc / "asterisk.conf").write_text(
            "[directories]\n"
            f"astetcdir => {self.etc}\nastmoddir => {PREFIX}/lib/asterisk/modules\nastvarlibdir => {self.data}\n"
            f"astdbdir => {self.data}\nastkeydir => {self.data}\nastdatadir => {self.data}\n"
            f"astagidir => {f}/agi-bin\nastspooldir => {f}/spool\nastrundir => {f}/run\nastlogdir => {f}/log\n"
            f"astsbindir => {PREFIX}/sbin\n[options]\nverbose = 3\nnocolor = yes\nmaxfiles = 8192\n")
        (self.etc / "modules.conf").write_text(
            "[modules]\nautoload = yes\n"
            # ARI needs res_websocket_client configured; the hotline speaks AGI and AMI only.
            + "".join(f"noload => {m.name}\n" for m in (PREFIX / "lib/asterisk/modules").glob("res_ari*.so"))
            + "noload => res_stasis_snoop.so\nnoload => res_stasis_recording.so\nnoload => res_stasis_playback.so\n"
            "noload => res_stasis_answer.so\nnoload => res_stasis_device_state.so\nnoload => res_stasis.so\n"
            "noload => res_websocket_client.so\nnoload => res_http_websocket.so\n")
        (self.etc / "logger.conf").write_text(
            "[general]\ndateformat = %F %T.%3q\n[logfiles]\nmessages => notice,warning,error,verbose(3)\n")
        for name in ("http.conf", "cdr.conf", "cel.conf", "indications.conf", "rtp.conf"):
            (self.etc / name).touch()
        (self.etc / "http.conf").write_text("[general]\nenabled = no\n")
        (self.etc / "rtp.conf").write_text("[general]\nrtpstart = 20000\nrtpend = 30000\n")

    def _edit(self, name: str, replacements: list[tuple[str, str]]) -> None:
        path = self.etc / name
        text = path.read_text()
        for old, new in replacements:
            assert old in text, f"{name} no longer holds {old!r}"
            text = text.replace(old, new, 1)
        path.write_text(text)

    # -- run ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.proc = subprocess.Popen(
            [str(PREFIX / "sbin" / "asterisk"), "-f", "-C", str(self.etc / "asterisk.conf")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"asterisk exited with {self.proc.returncode}; see {self.log}")
            try:
                self.ami = Ami(self.ami_port)
                break
            except (OSError, AssertionError):
                time.sleep(0.2)
        else:
            raise RuntimeError("asterisk's AMI did not come up")
        self.ami.wait_for(lambda e: e.get("event") == "FullyBooted", timeout_s=60)

    def cli(self, command: str) -> str:
        out = subprocess.run([str(PREFIX / "sbin" / "asterisk"), "-C", str(self.etc / "asterisk.conf"),
                              "-rx", command], capture_output=True, text=True, timeout=30)
        return out.stdout

    def stop(self) -> None:
        if self.ami is not None:
            self.ami.close()
        if self.proc is not None and self.proc.poll() is None:
            self.cli("core stop now")
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    # -- calls -------------------------------------------------------------------------------------------
    def call(self, caller: str = "13812345678", exten: str = "95555", context: str = "hotline-inbound") -> Caller:
        """A caller dials ``exten@context``; returns once the IVR channel exists."""
        assert self.ami is not None
        n = next(self._calls)
        call = Caller(self, f"rt{os.getpid()}-{n}.1", f"rt{os.getpid()}-{n}.2")
        mark = len(self.ami.events)
        reply = self.ami.action(
            "Originate", Channel=f"Local/{exten}@{context}/n", Context="test-caller", Exten="s", Priority="1",
            CallerID=f'"{caller}" <{caller}>', Async="true", ChannelId=call.own_id, OtherChannelId=call.ivr_id)
        assert reply.get("response") == "Success", reply
        self.ami.wait_for(lambda e: e.get("event") == "Newchannel" and e.get("uniqueid") == call.ivr_id, after=mark)
        call.mark = mark
        return call

    def originate(self, **fields: str) -> Message:
        assert self.ami is not None
        return self.ami.action("Originate", **fields)


class Caller:
    """One caller: ``own_id`` is the phone's side of the Local channel, ``ivr_id`` the hotline's (agi_uniqueid)."""

    def __init__(self, pbx: RealAsterisk, own_id: str, ivr_id: str) -> None:
        self.pbx, self.own_id, self.ivr_id = pbx, own_id, ivr_id
        self.mark = 0

    @property
    def ami(self) -> Ami:
        assert self.pbx.ami is not None
        return self.pbx.ami

    def commands(self) -> list[str]:
        """Every AGI command run on the IVR channel so far (AGIExecStart), in order."""
        return [e["command"] for e in self.ami.by_uniqueid.get(self.ivr_id, [])
                if e.get("event") == "AGIExecStart"]

    def heard(self) -> list[str]:
        """The sounds the IVR played to this caller, in order (``STREAM FILE`` and ``Read``'s prompts)."""
        sounds: list[str] = []
        for command in self.commands():
            if command.startswith("STREAM FILE "):
                sounds.append(command.split()[2])
            elif command.startswith('EXEC Read "'):
                sounds += [s for s in command.split(",")[1].split("&") if s]
        return sounds

    def wait_prompt(self, prompt: str, timeout_s: float = 30) -> Message:
        """Waits until a command that plays ``prompt`` (a sound name's end) has started on the IVR channel."""
        def plays(event: Message) -> bool:
            if event.get("event") != "AGIExecStart" or event.get("uniqueid") != self.ivr_id:
                return False
            return re.search(rf"/{re.escape(prompt)}(?:[\s&,\"]|$)", event["command"]) is not None
        return self.ami.wait_for(plays, timeout_s, uniqueid=self.ivr_id)

    def wait_command(self, starts: str, timeout_s: float = 30) -> Message:
        return self.ami.wait_for(lambda e: e.get("event") == "AGIExecStart" and e["command"].startswith(starts),
                                 timeout_s, uniqueid=self.ivr_id)

    def answer(self, *steps: tuple[str, str], timeout_s: float = 30) -> None:
        """For each (prompt, keys): wait until the prompt has started, then type the keys."""
        for prompt, keys in steps:
            self.wait_prompt(prompt, timeout_s)
            self.press(keys)

    def press(self, keys: str, tone_s: float = TONE_S, gap_s: float = GAP_S) -> None:
        """Types keys on the caller's phone (SendDTMF on their side of the Local channel: DTMF begin, the
        tone's length, end) at a human pace; returns once the last key is sent."""
        def typed(e: Message) -> bool:
            return e.get("event") == "UserEvent" and e.get("userevent") == "Typed"
        before = self.ami.count(typed, self.own_id)
        self._set(KEYS=keys, TONE_MS=str(int(tone_s * 1000)), GAP_MS=str(int(gap_s * 1000)))
        self._redirect("type")
        self.ami.wait_count(typed, self.own_id, before + 1, timeout_s=10 + 3 * len(keys) * (tone_s + gap_s))

    def _set(self, **variables: str) -> None:
        for name, value in variables.items():
            reply = self.ami.action("Setvar", Channel=self.own_id, Variable=name, Value=value)
            assert reply.get("response") == "Success", reply

    def _redirect(self, exten: str) -> None:
        reply = self.ami.action("Redirect", Channel=self.own_id, Context="test-caller", Exten=exten, Priority="1")
        assert reply.get("response") == "Success", reply

    def speak(self) -> None:
        """The caller starts talking (3 s), then falls silent."""
        self._redirect("speak")

    def wait_spoken(self, timeout_s: float = 10) -> None:
        """Until the caller's first words (``speak``) have ended."""
        self.ami.wait_for(lambda e: e.get("event") == "UserEvent" and e.get("userevent") == "Spoke", timeout_s,
                          uniqueid=self.own_id)

    def hang_up(self) -> None:
        self.ami.action("Hangup", Channel=self.ivr_id)

    def wait_end(self, timeout_s: float = 60) -> Message:
        return self.ami.wait_for(lambda e: e.get("event") == "Hangup", timeout_s, uniqueid=self.ivr_id)


class SipPhone:
    """An agent's desk phone on PJSIP, played by SIPp (Debian's sip-tester): registers with the endpoint's
    digest credentials, answers the calls the hotline dials, dials feature codes (tests/sipp/*.xml)."""

    def __init__(self, pbx: RealAsterisk, extension: str, password: str) -> None:
        self.pbx, self.extension, self.password = pbx, extension, password
        self.port, self.media_port = free_port(), free_port()
        self.log = pbx.folder / f"sipp-{extension}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log.mkdir(exist_ok=True)

    def _argv(self, scenario: str, service: str, *extra: str) -> list[str]:
        return ["sipp", f"127.0.0.1:{self.pbx.sip_port}", "-sf", str(SIPP / scenario), "-s", service,
                "-i", "127.0.0.1", "-p", str(self.port), "-mp", str(self.media_port), "-m", "1", "-nostdin",
                "-au", self.extension, "-ap", self.password, "-key", "agent", self.extension,
                "-timeout", "60s", "-timeout_error", "-trace_err", "-error_file", str(self.log / f"{scenario}.err"),
                *extra]

    def register(self) -> None:
        done = subprocess.run(self._argv("register.xml", self.extension), capture_output=True, timeout=30,
                              cwd=self.log)
        assert done.returncode == 0, f"registration failed: {done.stdout[-800:]!r}"

    def pick_up(self) -> None:
        """From now on the phone answers every call after a second of ringing and hangs up after 2 s, and
        answers Asterisk's OPTIONS; Asterisk is made to qualify it at once (it found nothing listening while
        the phone was only registering)."""
        argv = [a for a in self._argv("phone.xml", self.extension) if a not in ("-m", "1")]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.log)
        deadline = time.monotonic() + 15
        while "Avail" not in self.pbx.cli(f"pjsip show contacts like {self.extension}"):
            assert time.monotonic() < deadline, "Asterisk does not see the phone"
            self.pbx.cli(f"pjsip qualify {self.extension}")
            time.sleep(0.3)

    def hang_up_phone(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)

    def dial(self, code: str) -> None:
        """Dials ``code`` (``*1`` ...) and stays on until Asterisk hangs up."""
        done = subprocess.run(self._argv("dial.xml", code), capture_output=True, timeout=60, cwd=self.log)
        assert done.returncode == 0, f"dialling {code} failed: {done.stdout[-800:]!r}"


def _sox(args: list[str]) -> None:
    subprocess.run(["sox", *args], check=True, capture_output=True)
