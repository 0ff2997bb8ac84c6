"""Target names and addresses as users write them: ``NAME=URL`` on the command line.

- ``local``: this process (the default; no agent).
- ``ssh://[user@]host[:port][/dir][?python=PATH&ssh_config=FILE]``: the system OpenSSH client, so the user's
  ``~/.ssh/config``, agent, ProxyJump, known_hosts and ControlMaster apply; ``BatchMode`` stops any prompt and
  host keys are checked as the user's configuration says (never switched off here). ``dir`` is the agent's cache
  on the target (default ``~/.cache/exportkit-agent``), ``python`` its interpreter (default ``python3``).
- ``python:/path/to/python``: another interpreter on this machine (another onnxruntime version, say).

A fleet is a TOML file (``--targets fleet.toml``) with one table, ``[targets]``, of ``NAME = "URL"`` lines.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from export_kit.errors import UsageError
from export_kit.safeio.limits import SMALL_FILE_BYTES, read_regular

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
#: The bootstrap the transport runs: read a length line, then that many bytes of agent source, and run it. It is a
#: constant: no name, path or value from the user is ever part of a remote command line except through
#: :func:`shlex.quote`.
BOOTSTRAP = ("import sys; n = int(sys.stdin.buffer.readline()); "
             "exec(compile(sys.stdin.buffer.read(n), 'exportkit-agent', 'exec'))")


@dataclass(frozen=True)
class TargetSpec:
    name: str
    kind: str  # "local", "ssh" or "python"
    host: str = ""
    user: str = ""
    port: int | None = None
    cache: str = ""
    python: str = "python3"
    ssh_config: str = ""

    @property
    def remote(self) -> bool:
        return self.kind != "local"

    def argv(self, connect_timeout: float) -> list[str]:
        """The command that starts the agent's bootstrap on the target."""
        env = f"EXPORTKIT_AGENT_CACHE={shlex.quote(self.cache)} " if self.cache else ""
        if self.kind == "python":
            return [self.python, "-u", "-c", BOOTSTRAP]
        ssh = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={max(1, int(connect_timeout))}",
               "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=2"]
        if self.ssh_config:
            ssh += ["-F", self.ssh_config]
        if self.port:
            ssh += ["-p", str(self.port)]
        if self.user:
            ssh += ["-l", self.user]
        return [*ssh, "--", self.host, f"{env}{shlex.quote(self.python)} -u -c {shlex.quote(BOOTSTRAP)}"]

    def __str__(self) -> str:
        return self.name


def parse_target(text: str) -> TargetSpec:
    """``NAME=URL``, or ``local``; a one-line UsageError for anything else."""
    if text == "local":
        return TargetSpec("local", "local")
    name, sep, url = text.partition("=")
    if not sep or not NAME.fullmatch(name):
        raise UsageError(f"--target {text!r}: expected NAME=URL (NAME: letters, digits, '.', '_' or '-', up to "
                         "32), e.g. pi5=ssh://pi@pi5.local or old=python:/opt/ort117/bin/python")
    if name == "local":
        raise UsageError("--target: the name 'local' is this machine's; give the remote target another name")
    if url.startswith("python:"):
        path = url[len("python:"):]
        if not path.startswith("/"):
            raise UsageError(f"--target {name}: python: takes an absolute interpreter path, got {path!r}")
        return TargetSpec(name, "python", python=path)
    if url.startswith("ssh://"):
        return _ssh(name, url)
    raise UsageError(f"--target {name}: unknown address {url!r}; use ssh://[user@]host[:port][/dir] or "
                     "python:/path/to/python")


def _ssh(name: str, url: str) -> TargetSpec:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"--target {name}: the port in {url!r} is not a number from 1 to 65535") from None
    host = parts.hostname or ""
    if not host or host.startswith("-") or not re.fullmatch(r"[A-Za-z0-9_.:%-]+", host):
        raise UsageError(f"--target {name}: {url!r} names no usable host")
    user = parts.username or ""
    if user and not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", user):
        raise UsageError(f"--target {name}: the user in {url!r} is not a plain login name")
    query = {k: v[-1] for k, v in parse_qs(parts.query, strict_parsing=False).items()}
    unknown = set(query) - {"python", "ssh_config"}
    if unknown:
        raise UsageError(f"--target {name}: unknown option(s) {', '.join(sorted(unknown))}; known: python, "
                         "ssh_config")
    return TargetSpec(name, "ssh", host=host, user=user, port=port, cache=parts.path if parts.path != "/" else "",
                      python=query.get("python", "python3"), ssh_config=query.get("ssh_config", ""))


def parse_targets(texts: list[str] | tuple[str, ...] | None) -> list[TargetSpec]:
    """The targets a command runs on, ``local`` first when named (or when none is); names are unique."""
    specs = [parse_target(t) for t in texts or ("local",)]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise UsageError(f"--target: each target needs its own name ({', '.join(names)})")
    return specs


def load_fleet(path: Path) -> list[str]:
    """The ``NAME=URL`` lines of a fleet file, in its order; anything but a ``[targets]`` table of strings is a
    one-line UsageError."""
    try:
        data = tomllib.loads(read_regular(Path(path), SMALL_FILE_BYTES, UsageError, "--targets").decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"--targets {path}: not a TOML file ({str(exc).splitlines()[0][:200]})") from None
    table = data.get("targets")
    if set(data) != {"targets"} or not isinstance(table, dict) or not table:
        raise UsageError(f"--targets {path}: expected one [targets] table of NAME = \"URL\" lines")
    bad = [name for name, url in table.items() if not isinstance(url, str)]
    if bad:
        raise UsageError(f"--targets {path}: {bad[0]} must be a URL in quotes")
    return [f"{name}={url}" for name, url in table.items()]
