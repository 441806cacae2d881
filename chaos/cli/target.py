"""`chaos target check FILE [--live]` and `chaos target proxies FILE`: a target description
(chaos-target.yaml), your own stack.

    chaos target check chaos-target.yaml            # the file whole: every problem, its line
    chaos target check chaos-target.yaml --live     # and toxiproxy has a proxy for every link
    chaos target proxies chaos-target.yaml          # create the links' proxies in toxiproxy

`proxies` creates (or, when changed, replaces) the proxy of every link that declares both
``listen`` and ``upstream``, in one call to toxiproxy's ``/populate``; links without them are
listed as left to you. Exit codes (chaos.core.exits): 0 done, 2 a bad file (or nothing to
create), 5 toxiproxy does not answer, refuses, or lacks a proxy just created.
"""

from __future__ import annotations

import json

from chaos.core.errors import ConfigError
from chaos.core.exits import Exit
from chaos.core.target import Target


def add_parser(sub, parser_class) -> None:
    from chaos.cli import JSON_HELP
    tg = sub.add_parser("target", help="your own stack's description file: check it, create "
                                       "its toxiproxy links")
    t_sub = tg.add_subparsers(dest="action", required=True, parser_class=parser_class)
    ck = t_sub.add_parser("check", help="validate a target file (every problem with its line)")
    ck.add_argument("file", metavar="FILE", help="the target description (chaos-target.yaml)")
    ck.add_argument("--live", action="store_true",
                    help="also against the running stack: toxiproxy answers and has a proxy "
                         "for every declared link")
    ck.add_argument("--json", action="store_true", help=JSON_HELP)
    px = t_sub.add_parser("proxies", help="create in toxiproxy the proxies of the links that "
                                          "declare listen and upstream")
    px.add_argument("file", metavar="FILE", help="the target description (chaos-target.yaml)")
    px.add_argument("--json", action="store_true", help=JSON_HELP)


def describe(target: Target) -> dict:
    return {"name": target.name, "runtime": target.runtime, "source": target.source,
            "toxiproxy": target.toxiproxy, "dcs": list(target.dcs),
            "services": sorted(target.services), "links": sorted(target.links)}


def proxy_specs(target: Target) -> tuple[list[dict], list[str]]:
    """The proxies toxiproxy's /populate takes, for the links that declare listen and
    upstream; and the names of the links that do not (their proxies are left to the user)."""
    links = sorted(target.links.values(), key=lambda lk: (lk.index, lk.name))
    specs = [{"name": lk.name, "listen": lk.listen, "upstream": lk.upstream, "enabled": True}
             for lk in links if lk.listen and lk.upstream]
    left = [lk.name for lk in links if not (lk.listen and lk.upstream)]
    return specs, left


def cmd(args) -> int:
    from chaos.targets.file import check_live, load

    target = load(args.file)                  # a bad file: ConfigError, exit 2
    doc = describe(target)
    if args.action == "check":
        if args.live:
            check_live(target)
        doc["live"] = bool(args.live)
        if args.json:
            print(json.dumps(doc, indent=2))
        else:
            print(f"target {target.name} ({args.file}): {len(target.services)} services, "
                  f"{len(target.links)} links, {target.runtime} runtime: the file is valid"
                  + ("; toxiproxy has every link's proxy" if args.live else ""))
        return Exit.OK
    specs, left = proxy_specs(target)
    if not target.toxiproxy:
        raise ConfigError(f"target {target.name}: no `toxiproxy:` address in {args.file}; "
                          "write its API's HOST:PORT (e.g. toxiproxy: 127.0.0.1:8474)")
    if not specs:
        raise ConfigError(f"target {target.name}: none of its links declares both listen and "
                          "upstream, so there is no proxy to create; write them "
                          "(listen: 127.0.0.1:21501, upstream: relay-a:8000) or create the "
                          "proxies yourself, named as the links")
    from chaos.targets.toxi import Toxiproxy, ToxiproxyError
    toxi = Toxiproxy(target.toxiproxy)
    toxi.populate(specs)
    missing = sorted({s["name"] for s in specs} - set(toxi.proxies()))
    if missing:                               # toxiproxy said yes but has not got them
        raise ToxiproxyError(f"toxiproxy at {target.toxiproxy} has no proxy for {', '.join(missing)} "
                             "after creating it; is its listen address free?")
    doc.update(created=[s["name"] for s in specs], left_to_you=left)
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(f"toxiproxy at {target.toxiproxy}: {len(specs)} proxies created or kept: "
              + ", ".join(s["name"] for s in specs))
        if left:
            print(f"not created (no listen/upstream in the file): {', '.join(left)}")
    return Exit.OK
