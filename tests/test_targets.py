"""Verify on a target: the agent streamed to another interpreter runs every check there, rows keyed by target.
A `python:` target is this machine's own interpreter, so these tests need no board; faults are planted on the
target's side only (a `sitecustomize` first on its path), where a check on the build machine cannot see them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from export_kit import api
from export_kit.errors import UsageError
from export_kit.targets.remote import AGENT_RUNTIMES
from export_kit.targets.spec import parse_target, parse_targets

FAULTS = {
    # outputs moved by 0.05: far past fp32's 1e-4, invisible to a check on the build machine
    "perturbed": "real = ort.InferenceSession.run\n"
                 "ort.InferenceSession.run = lambda self, *a, **k: [o + 0.05 for o in real(self, *a, **k)]\n",
    "missing runtime": "sys.modules['onnxruntime'] = None\n",
    "crash": "ort.InferenceSession.run = lambda self, *a, **k: os._exit(3)\n",
    "hang": "ort.InferenceSession.run = lambda self, *a, **k: time.sleep(600)\n",
    "malformed": "real = ort.InferenceSession.run\n"
                 "ort.InferenceSession.run = lambda self, *a, **k: [np.concatenate([o, o])\n"
                 "                                                  for o in real(self, *a, **k)]\n",
}


def _target(tmp_path: Path, fault: str | None = None) -> str:
    """A python: target: this interpreter, behind a wrapper that puts a planted fault first on its path."""
    if fault is None:
        return f"python:{sys.executable}"
    site = tmp_path / fault.replace(" ", "_")
    site.mkdir()
    prelude = "import os, sys, time\nimport numpy as np\n"
    body = FAULTS[fault] if fault == "missing runtime" else "import onnxruntime as ort\n" + FAULTS[fault]
    (site / "sitecustomize.py").write_text(prelude + body)
    wrapper = site / "python"
    wrapper.write_text(f"#!/bin/sh\nPYTHONPATH={site} exec {sys.executable} \"$@\"\n")
    wrapper.chmod(0o755)
    return f"python:{wrapper}"


@pytest.fixture(autouse=True)
def agent_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "agent-cache"
    monkeypatch.setenv("EXPORTKIT_AGENT_CACHE", str(cache))
    return cache


def _rows(report, target: str) -> list:
    return [r for r in report.verify_rows() if r.target == target]


def test_every_onnxruntime_artifact_passes_on_the_target_with_the_same_checks(built_copy, synthetic, agent_cache):
    """Parity and, with data, accuracy on the test split: measured on the target, equal to the local figure where
    the outputs are the same."""
    report = api.verify(built_copy, synthetic.test, targets=["local", f"me={_target(agent_cache)}"], explain=False,
                        log=lambda _: 0)
    local, mine = _rows(report, "local"), _rows(report, "me")
    ran = [r for r in mine if r.status != "skipped"]
    wanted = {a["name"] for a in report.artifacts if a["runtime"] in AGENT_RUNTIMES and not a.get("files")}
    assert {r.artifact for r in ran} == wanted and len(wanted) >= 3  # onnx, int8, int8-static at least
    assert all(r.status == "passed" for r in ran), [(r.artifact, r.reason) for r in ran]
    for row in ran:  # the same checks as the local row of that artifact and runtime
        twin = next(r for r in local if (r.artifact, r.runtime, r.device) == (row.artifact, row.runtime, "cpu"))
        assert [c["name"] for c in row.checks] == [c["name"] for c in twin.checks]
        assert (row.device == "me (x86_64)" and row.max_abs_err <= 1e-4) or row.precision != "fp32"
    skipped = [r for r in mine if r.status == "skipped"]
    assert all("single-file onnxruntime artifacts only" in r.reason for r in skipped)
    assert report.targets["me"]["runtimes"]["onnxruntime"] and report.targets["me"]["emulated"] is False


def test_a_rerun_uploads_nothing_and_the_cache_is_checked_before_loading(built_copy, agent_cache, monkeypatch):
    from export_kit.targets.channel import Channel

    sent = []
    real = Channel.request
    monkeypatch.setattr(Channel, "request", lambda self, h, b=(): (sent.append(h["op"]), real(self, h, b))[1])
    target = [f"me={_target(agent_cache)}"]
    api.verify(built_copy, targets=target, explain=False, log=lambda _: 0)
    first = sent.count("put")
    cached = sorted(p.name for p in agent_cache.iterdir())
    assert first == len(cached) > 0 and all(len(n) == 64 for n in cached)
    sent.clear()
    api.verify(built_copy, targets=target, explain=False, log=lambda _: 0)
    assert sent.count("put") == 0 and sent.count("have") == first
    victim = agent_cache / cached[0]  # a cached file changed on the target is never loaded
    victim.write_bytes(victim.read_bytes()[:-1] + b"\0")
    sent.clear()
    report = api.verify(built_copy, targets=target, explain=False, log=lambda _: 0)
    assert sent.count("put") == 1 and all(r.status != "failed" for r in report.verify_rows())


def test_a_fault_planted_on_the_target_fails_only_the_targets_rows(built_copy, tmp_path):
    report = api.verify(built_copy, targets=["local", f"bad={_target(tmp_path, 'perturbed')}"], explain=False,
                        log=lambda _: 0)
    assert all(r.status != "failed" for r in _rows(report, "local"))
    bad = [r for r in _rows(report, "bad") if r.status != "skipped"]
    fp32 = [r for r in bad if r.precision == "fp32"]
    assert fp32 and all(r.status == "failed" and "max abs error" in r.reason for r in fp32)


@pytest.mark.parametrize("fault, words", [("missing runtime", "skipped on broken: "),
                                          ("crash", "closed the connection"),
                                          ("hang", "did not answer within 5 s"),
                                          ("malformed", "for a batch of 1")])
def test_a_broken_target_ends_as_a_clear_row(built_copy, tmp_path, fault, words):
    report = api.verify(built_copy, targets=[f"broken={_target(tmp_path, fault)}"], explain=False,
                        target_timeout=5, log=lambda _: 0)
    rows = [r for r in _rows(report, "broken") if "single-file" not in r.reason]
    assert rows and all(words in r.reason for r in rows[:1]), [(r.status, r.reason) for r in rows]
    assert all(r.status in ("failed", "skipped") for r in rows)


def test_an_unreachable_target_skips_its_rows_and_exits_4_while_the_others_run(built_copy, tmp_path):
    done = subprocess.run([str(Path(sys.executable).with_name("exportkit")), "verify", "--artifacts",
                           str(built_copy), "--target", "local", "--target", "gone=python:/nonexistent/python",
                           "--no-explain"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "NOT REACHED target gone: target gone: cannot start /nonexistent/python" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_reply_that_breaks_the_protocol_or_its_bounds_is_refused(tmp_path):
    """An 'agent' that answers with a header announcing a terabyte array, or with noise: refused from the
    header, one line, nothing allocated."""
    from export_kit.targets.channel import Channel, TargetError

    for name, reply in (("huge", "sys.stdout.buffer.write(struct.pack('>I', len(h)) + h + struct.pack('>Q', 1 << 40))"),
                        ("noise", "sys.stdout.buffer.write(b'\\x00\\x00\\x00\\x05hello')")):
        fake = tmp_path / name
        fake.write_text(f"#!{sys.executable}\nimport json, struct, sys\nh = json.dumps({{'ok': True, 'blobs': 1}})"
                        f".encode()\n{reply}\nsys.stdout.flush()\nsys.stdin.read()\n")
        fake.chmod(0o755)
        with pytest.raises(TargetError) as caught:
            Channel(parse_target(f"x=python:{fake}"), timeout=10)
        assert ("announced an array" if name == "huge" else "not the agent's protocol") in str(caught.value)


@pytest.mark.parametrize("text, words", [
    ("pi", "expected NAME=URL"), ("local=python:/usr/bin/python3", "the name 'local'"),
    ("pi=python:python3", "absolute interpreter path"), ("pi=ftp://host", "unknown address"),
    ("pi=ssh://-oProxyCommand=x", "no usable host"), ("pi=ssh://host:99999", "port"),
    ("pi=ssh://host?evil=1", "unknown option"), ("pi=ssh://a;b@host", "plain login name")])
def test_a_malformed_target_is_a_one_line_usage_error(text, words):
    with pytest.raises(UsageError, match=words):
        parse_target(text)


def test_the_ssh_command_line_quotes_everything_and_never_disables_host_key_checks():
    spec = parse_target("pi=ssh://pi@pi5.local:2222/var/tmp/ek?python=/opt/agent/bin/python")
    argv = spec.argv(10)
    assert argv[:1] == ["ssh"] and "BatchMode=yes" in argv and "-p" in argv and "2222" in argv
    assert not any("StrictHostKeyChecking" in a for a in argv)
    assert argv[argv.index("--") + 1] == "pi5.local" and argv[argv.index("-l") + 1] == "pi"
    remote = argv[-1]
    assert remote.startswith("EXPORTKIT_AGENT_CACHE=/var/tmp/ek /opt/agent/bin/python -u -c '")
    with pytest.raises(UsageError, match="its own name"):
        parse_targets(["a=python:/x", "a=python:/y"])
    assert os.sep not in parse_target("local").name


def test_a_fleet_file_runs_every_target_in_one_command_and_one_report(built_copy, tmp_path):
    """Two targets from a TOML fleet, verified in parallel: the clean one passes, the one with a planted fault
    fails alone, and both sit in one report with their fingerprints (exit 1: a row failed)."""
    import json

    fleet = tmp_path / "fleet.toml"
    fleet.write_text(f'[targets]\ngood = "{_target(tmp_path)}"\nbad = "{_target(tmp_path, "perturbed")}"\n')
    done = subprocess.run([str(Path(sys.executable).with_name("exportkit")), "verify", "--artifacts",
                           str(built_copy), "--targets", str(fleet), "--no-explain"], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads((built_copy / "report.json").read_text())
    assert set(report["targets"]) == {"good", "bad"}
    rows = [r for r in report["verify"] if r["status"] != "skipped"]
    assert {r["target"] for r in rows} == {"good", "bad"}
    assert all(r["status"] == "passed" for r in rows if r["target"] == "good")
    assert any(r["status"] == "failed" for r in rows if r["target"] == "bad")
    assert "on good (x86_64): " in done.stdout and "failed there: " in done.stdout


@pytest.mark.parametrize("text, words", [("targets = 3", "one [targets] table"), ("[targets]\na = 3", "in quotes"),
                                         ("[targets", "not a TOML file"), ("[other]\na = 'x'", "one [targets]")])
def test_a_malformed_fleet_file_is_a_one_line_usage_error(tmp_path, text, words):
    from export_kit.targets.spec import load_fleet

    fleet = tmp_path / "fleet.toml"
    fleet.write_text(text)
    with pytest.raises(UsageError, match=words.replace("[", r"\[")):
        load_fleet(fleet)
