"""Mechanism ``iptables``: random packet drop in a service's network namespace.

Action params (kind_packet_drop.py): ``service``, ``runtime``, ``share``, ``direction``,
``port`` and, locally, ``address``. Every rule carries the comment
``chaos:<stack id>:<fault id>``, so that a revert, a reset or a person with
``iptables -S | grep chaos:`` finds it; a revert deletes the rules with its comment that
match its own service (address and port), and nothing else.

Which namespace a service's traffic is in is its runtime's to say (``netns_prefix``):

- local: the host's INPUT / OUTPUT chains (the services share the host's namespace).
- docker: the container's own namespace, entered with ``nsenter -t <pid> -n``; the pid is
  the docker SDK's ``State.Pid`` of the container labelled ``chaos.stack=space`` and
  ``chaos.service=<name>``. A container that is not running has no namespace: nothing to
  revert there (its rules went with it).

Without iptables, or without the right to change it (not root), inject raises ConfigError
before any rule is added, saying why.

Sweep (`chaos stack reset`, without the ledger): every rule whose comment starts with
``chaos:``, in any table, of each iptables backend installed (nft and legacy keep separate
rule sets), is deleted in each container's namespace (docker) and on the host. On the host,
the rules of another local stack that is still running are left alone: the machine may be
shared.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess

from chaos.core.errors import ConfigError, IptablesError  # noqa: F401 - IptablesError re-exported
from chaos.targets import procs
from chaos.targets.runtimes import runtime_of
from chaos.targets.state import StackState
from chaos.faults.base import Action, Step, SweepStage, Swept

CMD_TIMEOUT_S = 5.0
XTABLES_WAIT_S = "3"           # iptables -w: wait for the xtables lock, not forever
CHAINS = {"in": "INPUT", "out": "OUTPUT"}
COMMENT_PREFIX = "chaos:"


def iptables_binary() -> str | None:
    found = shutil.which("iptables")
    if found:
        return found
    for path in ("/usr/sbin/iptables", "/sbin/iptables"):
        if os.access(path, os.X_OK):
            return path
    return None


def comment_for(stack_id: str, fault_id: str) -> str:
    return f"chaos:{stack_id}:{fault_id}"


def _run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=CMD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise IptablesError(f"`{shlex.join(argv)}` did not finish within {CMD_TIMEOUT_S:g} s") from None
    if check and r.returncode != 0:
        raise IptablesError(f"`{shlex.join(argv)}` failed (exit {r.returncode}): "
                            f"{(r.stderr or r.stdout).strip()[:300]}")
    return r


def unusable_reason(runtime) -> str | None:
    """Why iptables cannot be used here, in the namespaces of ``runtime`` (a runtime object,
    ``chaos.targets.runtimes.runtime_of``); None: it can."""
    binary = iptables_binary()
    if binary is None:
        return ("iptables is not installed (Debian package iptables; fixtures/setup.sh installs "
                "it)")
    refused = runtime.netns_refusal()
    if refused:
        return refused
    if os.geteuid() != 0:
        return (f"changing iptables needs root and this runs as uid {os.geteuid()}; run as root "
                "(or with sudo)")
    r = _run([binary, "-w", XTABLES_WAIT_S, "-S", "INPUT"], check=False)
    if r.returncode != 0:
        return f"`iptables -S INPUT` failed: {(r.stderr or r.stdout).strip()[:200]}"
    return None


def rule_specs(a: Action, comment: str) -> list[tuple[str, list[str]]]:
    """(chain, match and target arguments) of every rule an action adds."""
    p = a.params
    directions = ("in", "out") if p["direction"] == "both" else (p["direction"],)
    prob = f"{float(p['share']):.6f}"
    out = []
    for d in directions:
        match: list[str] = []
        if p.get("address"):
            match += ["-d" if d == "in" else "-s", p["address"]]
        match += ["-p", "tcp", "--dport" if d == "in" else "--sport", str(p["port"])]
        match += ["-m", "statistic", "--mode", "random", "--probability", prob,
                  "-m", "comment", "--comment", comment, "-j", "DROP"]
        out.append((CHAINS[d], match))
    return out


def _value(tokens: list[str], flag: str) -> str | None:
    try:
        return tokens[tokens.index(flag) + 1]
    except (ValueError, IndexError):
        return None


def is_own_rule(tokens: list[str], a: Action, comment: str) -> bool:
    """Is this ``iptables -S`` line (split) one of the action's rules?"""
    if len(tokens) < 2 or tokens[0] != "-A" or _value(tokens, "--comment") != comment:
        return False
    chain = tokens[1]
    inbound = chain == CHAINS["in"]
    if chain not in CHAINS.values():
        return False
    if _value(tokens, "--dport" if inbound else "--sport") != str(a.params["port"]):
        return False
    address = a.params.get("address")
    if address:
        got = _value(tokens, "-d" if inbound else "-s")
        if got not in (address, f"{address}/32"):
            return False
    return True


def list_rules(prefix: list[str], binary: str) -> list[list[str]]:
    """Every rule of INPUT and OUTPUT in a namespace, as split ``iptables -S`` lines."""
    rules = []
    for chain in CHAINS.values():
        r = _run([*prefix, binary, "-w", XTABLES_WAIT_S, "-S", chain])
        rules += [shlex.split(line) for line in r.stdout.splitlines() if line.startswith("-A ")]
    return rules


def _container_pid(service: str, stack_id: str) -> int | None:
    """The pid of the service's running container of stack_id (None: none running). A
    container of another stack is never entered (IptablesError if only such are found)."""
    from chaos.targets.docker import DockerRuntime
    return DockerRuntime(stack_id).netns_pid(service)


class IptablesExecutor:
    mechanism = "iptables"

    def __init__(self, state: StackState) -> None:
        self.state = state
        self.runtime = runtime_of(state)
        self._reason: str | None | bool = False   # False: not checked yet

    def sweep(self, stage: SweepStage, step: Step) -> None:
        if stage is SweepStage.CLEAR:    # before anything waits for health: a drop rule would fail it
            step("removing chaos iptables rules", lambda: sweep_stack(self.state))

    def _unusable(self) -> str | None:
        if self._reason is False:
            self._reason = unusable_reason(self.runtime)
        return self._reason  # type: ignore[return-value]

    def _prefix(self, a: Action) -> list[str] | None:
        """The command prefix that enters the service's namespace ([]: the host's; None: it
        has none now)."""
        return self.runtime.netns_prefix(self.state, a.params["service"])

    def inject(self, a: Action) -> None:
        reason = self._unusable()
        if reason:
            raise ConfigError(f"packet_drop on {a.params['service']} cannot be injected: {reason}")
        prefix = self._prefix(a)
        if prefix is None:
            raise IptablesError(f"packet_drop: the container of {a.params['service']} is not "
                                "running, so it has no network namespace to drop packets in")
        binary = iptables_binary()
        comment = comment_for(self.state.stack_id, a.fault_id)
        for chain, spec in rule_specs(a, comment):
            exists = _run([*prefix, binary, "-w", XTABLES_WAIT_S, "-C", chain, *spec], check=False)
            if exists.returncode != 0:  # idempotent: a rule already there is not added twice
                _run([*prefix, binary, "-w", XTABLES_WAIT_S, "-I", chain, *spec])

    def revert(self, a: Action) -> None:
        binary = iptables_binary()
        if binary is None:
            return  # no iptables: no rule of ours can exist
        reason = self._unusable()
        if reason:
            raise IptablesError(f"cannot check for packet_drop rules on {a.params['service']}: {reason}")
        prefix = self._prefix(a)
        if prefix is None:
            return  # no running container: its namespace, and our rules, are gone
        comment = comment_for(self.state.stack_id, a.fault_id)
        for tokens in list_rules(prefix, binary):
            if is_own_rule(tokens, a, comment):
                r = _run([*prefix, binary, "-w", XTABLES_WAIT_S, "-D", *tokens[1:]], check=False)
                if r.returncode != 0 and "does a matching rule exist" not in r.stderr:
                    raise IptablesError(f"could not delete {shlex.join(tokens)}: {r.stderr.strip()[:200]}")


def host_rules(comment_prefix: str = COMMENT_PREFIX) -> list[str]:
    """The host's INPUT/OUTPUT rules whose comment starts with comment_prefix (for checks)."""
    binary = iptables_binary()
    if binary is None:
        return []
    return [shlex.join(t) for t in list_rules([], binary)
            if (_value(t, "--comment") or "").startswith(comment_prefix)]


def _variants() -> list[tuple[str, str]]:
    """(save command, iptables command) of each backend installed (nft and legacy keep
    separate rule sets)."""
    out = []
    for binary in ("iptables", "iptables-legacy"):
        b, save = shutil.which(binary), shutil.which(f"{binary}-save")
        if b and save:
            out.append((save, b))
    return out


def _try(argv: list[str]) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=CMD_TIMEOUT_S)
    except (subprocess.TimeoutExpired, OSError):
        return None


def sweep_rules(prefix: list[str], keep=lambda comment: False) -> list[str]:
    """Delete every rule whose comment starts with chaos: in one namespace (prefix: the
    command that enters it, [] for the host) unless keep(comment); return those deleted."""
    deleted = []
    for save, binary in _variants():
        r = _try([*prefix, save])
        if r is None or r.returncode != 0:
            continue
        table = "filter"
        for line in r.stdout.splitlines():
            if line.startswith("*"):
                table = line[1:].strip()
                continue
            if not line.startswith("-A "):
                continue
            tokens = shlex.split(line)
            comment = _value(tokens, "--comment") or ""
            if not comment.startswith(COMMENT_PREFIX) or keep(comment):
                continue
            d = _try([*prefix, binary, "-w", XTABLES_WAIT_S, "-t", table, "-D", *tokens[1:]])
            if d is not None and d.returncode == 0:
                deleted.append(f"{table} {shlex.join(tokens)}")
    return deleted


def sweep_host(stack_id: str | None = None) -> list[str]:
    """Delete the host's rules left by packet_drop (of one stack, or of any): the safety net for
    a reset when the ledger or the stack state is gone. Returns the rules deleted."""
    if os.geteuid() != 0:
        return []
    prefix = COMMENT_PREFIX + (f"{stack_id}:" if stack_id else "")
    return sweep_rules([], keep=lambda comment: not comment.startswith(prefix))


def sweep_stack(state: StackState) -> Swept:
    """Delete every chaos: rule of the stack's namespaces (docker) and of the host; on the
    host, those of another local stack that is still running stay."""
    swept = Swept()
    if os.geteuid() != 0 or not _variants():
        return swept
    live: dict[str, bool] = {}

    def other_live_stack(comment: str) -> bool:
        sid = comment.split(":")[1] if comment.count(":") >= 1 else ""
        if not sid or sid == state.stack_id:
            return False
        if sid not in live:
            live[sid] = bool(procs.find_labelled(sid))
        return live[sid]

    where = {"host": sweep_rules([], keep=other_live_stack)}
    for name, prefix in runtime_of(state).netns_prefixes(state).items():
        where[name] = sweep_rules(prefix)
    for name, rules in where.items():
        if rules:
            swept.did.append(f"deleted {len(rules)} iptables rule(s) in {name}: " + "; ".join(rules))
    return swept


def make(state: StackState) -> IptablesExecutor:
    return IptablesExecutor(state)
