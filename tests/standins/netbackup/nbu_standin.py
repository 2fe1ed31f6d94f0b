#!/usr/bin/env python3
"""STAND-IN for Veritas NetBackup's CLI — not an integration. NetBackup cannot run here.

Invoked through the links in bin/ (bppolicynew, bpplinfo, …), it checks each command's arguments
against the synopsis in the NetBackup Commands Reference Guide (unknown option or missing operand:
exit 2 with a message, as a contract test needs), records every call as one JSON line in
$NBU_STANDIN_LOG, and keeps just enough state in $NBU_STANDIN_STATE (policies, clients, includes,
schedules, backed-up copies of files) for the backend's scripts to run to the end: bpbackup copies
the policy's files into a store, bprestore copies them back under the rename file's names.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path

# option -> number of values it takes, per command (flags take 0); "operands": positional count
SYNOPSIS: dict[str, dict] = {
    "bppllist": {"operands": (0, 1), "options": {"-L": 0, "-l": 0, "-U": 0, "-M": 1, "-v": 0}},
    "bppolicynew": {"operands": (1, 1), "options": {"-M": 1, "-v": 0, "-reason": 1}},
    "bppldelete": {"operands": (1, 1), "options": {"-M": 1, "-v": 0, "-reason": 1}},
    "bpplinfo": {"operands": (1, 1), "options": {"-set": 0, "-modify": 0, "-L": 0, "-l": 0, "-U": 0,
                                                 "-active": 0, "-inactive": 0, "-pt": 1, "-residence": 1,
                                                 "-pool": 1, "-M": 1, "-v": 0}},
    "bpplclients": {"operands": (1, 1), "options": {"-add": 3, "-delete": 1, "-L": 0, "-l": 0, "-U": 0,
                                                    "-M": 1, "-v": 0}},
    "bpplinclude": {"operands": (1, 1), "options": {"-add": "+", "-delete": "+", "-L": 0, "-l": 0, "-U": 0,
                                                    "-M": 1, "-v": 0}},
    "bpplsched": {"operands": (1, 1), "options": {"-add": 1, "-delete": 1, "-deleteall": 0, "-st": 1, "-freq": 1,
                                                  "-rl": 1, "-window": 2, "-cal": 1, "-residence": 1, "-pool": 1,
                                                  "-L": 0, "-l": 0, "-U": 0, "-M": 1, "-v": 0}},
    "bpbackup": {"operands": (0, 0), "options": {"-i": 0, "-p": 1, "-s": 1, "-h": 1, "-w": 0, "-S": 1, "-t": 1,
                                                 "-L": 1}},
    "bplist": {"operands": (1, 99), "options": {"-C": 1, "-t": 1, "-R": 0, "-b": 0, "-l": 0, "-s": 1, "-e": 1,
                                                "-S": 1}},
    "bprestore": {"operands": (1, 99), "options": {"-C": 1, "-D": 1, "-t": 1, "-s": 1, "-e": 1, "-R": 1, "-L": 1,
                                                   "-w": 0, "-S": 1}},
    "bpimagelist": {"operands": (0, 0), "options": {"-client": 1, "-idonly": 0, "-d": 1, "-e": 1, "-policy": 1}},
    "bpclntcmd": {"operands": (0, 0), "options": {"-pn": 0, "-hn": 1, "-ip": 1}},
}
POLICY_TYPES = {"Standard", "MS-Windows"}
SCHEDULE_TYPES = {"FULL", "INCR", "CINC", "UBAK", "UARC"}


def fail(message: str, code: int = 2) -> None:
    print(f"{Path(sys.argv[0]).name}: {message}", file=sys.stderr)
    sys.exit(code)


def parse(command: str, argv: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    spec = SYNOPSIS[command]
    operands, options, i = [], {}, 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("-") and len(arg) > 1:
            if arg not in spec["options"]:
                fail(f"unknown option {arg}")
            n = spec["options"][arg]
            if n == "+":  # all remaining arguments
                options[arg] = argv[i + 1 :]
                if not options[arg]:
                    fail(f"{arg} needs at least one value")
                break
            values = argv[i + 1 : i + 1 + n]
            if len(values) < n:
                fail(f"{arg} needs {n} value(s)")
            options[arg] = values
            i += 1 + n
        else:
            operands.append(arg)
            i += 1
    low, high = spec["operands"]
    if not low <= len(operands) <= high:
        fail(f"expected {low}..{high} operand(s), got {len(operands)}")
    return operands, options


def nbu_date(text: str) -> float:
    return datetime.strptime(text, "%m/%d/%Y %H:%M:%S").timestamp()


def main() -> None:
    command = Path(sys.argv[0]).name
    if command not in SYNOPSIS:
        fail(f"not a NetBackup command this stand-in knows: {command}", 127)
    argv = sys.argv[1:]
    with open(os.environ["NBU_STANDIN_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps([command, *argv], ensure_ascii=False) + "\n")
    operands, opts = parse(command, argv)
    state_file = Path(os.environ["NBU_STANDIN_STATE"])
    state = json.loads(state_file.read_text()) if state_file.exists() else {"policies": {}, "images": []}
    policies = state["policies"]
    policy = policies.get(operands[0]) if operands else None
    if command in ("bpplinfo", "bpplclients", "bpplinclude", "bpplsched", "bppldelete") and policy is None:
        fail(f"policy {operands[0]} does not exist", 230)

    if command == "bppllist":
        if operands and policy is None:
            fail(f"the specified policy does not exist in the configuration database: {operands[0]}", 230)
    elif command == "bppolicynew":
        if policy is not None:
            fail(f"policy {operands[0]} already exists", 215)
        policies[operands[0]] = {"type": None, "active": False, "clients": [], "include": [], "schedules": {}}
    elif command == "bppldelete":
        del policies[operands[0]]
    elif command == "bpplinfo":
        if "-pt" in opts and opts["-pt"][0] not in POLICY_TYPES:
            fail(f"unknown policy type {opts['-pt'][0]}")
        policy["type"] = opts.get("-pt", [policy["type"]])[0]
        policy["active"] = "-active" in opts or policy["active"]
    elif command == "bpplclients":
        if "-add" in opts:
            policy["clients"].append(opts["-add"])
        elif "-delete" in opts:
            policy["clients"] = [c for c in policy["clients"] if c[0] != opts["-delete"][0]]
        else:
            for host, hardware, os_name in policy["clients"]:
                print(f"CLIENT {host} {hardware} {os_name}")
    elif command == "bpplinclude":
        if "-add" in opts:
            policy["include"] += [p for p in opts["-add"] if p not in policy["include"]]
        elif "-delete" in opts:
            policy["include"] = [p for p in policy["include"] if p not in opts["-delete"]]
        else:
            for path in policy["include"]:
                print(f"  Include:  {path}")
    elif command == "bpplsched":
        if "-add" in opts:
            if opts.get("-st", ["FULL"])[0] not in SCHEDULE_TYPES:
                fail(f"unknown schedule type {opts['-st'][0]}")
            for key in ("-freq", "-rl"):
                if key in opts and not opts[key][0].isdigit():
                    fail(f"{key} takes a number")
            if "-window" in opts and not all(v.isdigit() and int(v) <= 604800 for v in opts["-window"]):
                fail("-window takes start and duration in seconds")
            policy["schedules"][opts["-add"][0]] = {k: v for k, v in opts.items() if k != "-add"}
        elif "-delete" in opts:
            if opts["-delete"][0] not in policy["schedules"]:
                fail(f"schedule {opts['-delete'][0]} does not exist", 220)
            del policy["schedules"][opts["-delete"][0]]
    elif command == "bpbackup":
        if "-i" not in opts or "-p" not in opts:
            fail("-i (immediate) needs -p policy")
        target = policies.get(opts["-p"][0])
        if target is None or opts.get("-s", [""])[0] not in target["schedules"]:
            fail("policy or schedule does not exist", 230)
        host = opts.get("-h", [target["clients"][0][0]])[0]
        image = {"client": host, "time": time.time(), "files": {}}
        store = state_file.parent / "store" / f"{host}_{int(image['time'] * 1000)}"
        for path in target["include"]:
            root = Path(path)
            for src in [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()):
                copy = store / str(src).lstrip("/")
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, copy)
                image["files"][str(src)] = str(copy)
        state["images"].append(image)
    elif command in ("bplist", "bprestore", "bpimagelist"):
        client = opts.get("-C", opts.get("-client", [""]))[0]
        end = nbu_date(" ".join(opts["-e"][:2])) if "-e" in opts else float("inf")
        images = [im for im in state["images"] if im["client"] == client and im["time"] <= end]
        if command == "bpimagelist":
            for im in images:
                stamp = datetime.fromtimestamp(im["time"])
                print(f"Time: {stamp:%m/%d/%Y %H:%M:%S} ID: {client}_{int(im['time'])} FULL")
        elif not images:
            fail("no entity was found", 227)
        elif command == "bplist":
            latest = images[-1]["files"]
            for wanted in operands:
                for path in sorted(latest):
                    if path == wanted or path.startswith(wanted.rstrip("/") + "/"):
                        size = Path(latest[path]).stat().st_size
                        print(f"-rw-r--r-- root root {size} {path}" if "-l" in opts else path)
        else:  # bprestore: the newest image up to -e, renamed as the -R file says
            renames = []
            if "-R" in opts:
                for line in Path(opts["-R"][0]).read_text(encoding="utf-8").splitlines():
                    if line.startswith("change ") and " to " in line:
                        old, new = line[len("change ") :].split(" to ", 1)
                        renames.append((old, new))
            latest = images[-1]["files"]
            for wanted in operands:
                for path, copy in latest.items():
                    if path == wanted or path.startswith(wanted.rstrip("/") + "/"):
                        dest = path
                        for old, new in renames:
                            if path == old or path.startswith(old.rstrip("/") + "/"):
                                dest = new + path[len(old) :]
                        Path(dest).parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(copy, dest)
    elif command == "bpclntcmd":
        if "-hn" in opts and not any(c[0] == opts["-hn"][0] for p in policies.values() for c in p["clients"]):
            if not os.environ.get("NBU_STANDIN_KNOWN_HOSTS", "").split(",").count(opts["-hn"][0]):
                fail(f"host {opts['-hn'][0]} not found", 1)
    state_file.write_text(json.dumps(state, ensure_ascii=False))


if __name__ == "__main__":
    main()
