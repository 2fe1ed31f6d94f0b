"""The sections of BENCHMARKS.md, one function each: a table and sentences built from the raw files of the
run, each sentence citing its file, each target recorded on the Doc with its baseline from the same run.

No figure is written here by hand: what the text says about a benchmark's outcome is computed from its
raw file, and a key the file lacks reads "not measured".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.report import causes
from bench.report.doc import (
    NOT_MEASURED,
    Doc,
    cell,
    dash,
    get,
    median,
    mib,
    ms,
    num,
    obj,
    p95,
    ratio,
    s,
    spread_text,
    verdict,
    x,
)

DECISION_RATIO = 1.2
PARSE_RATIO = 1.5
STEP_RATIO = 1.3
BURST_WAITING_S = 45
REJECTION_S = 30
BOARD_P95_S = 0.300
BOARD_RATIO = 1.5
MEMO_S = 0.5


def _ratios(d: dict[str, Any] | None) -> tuple[float | None, float | None]:
    """ratio_median and ratio_p95 as recorded, or computed from the two spreads when not."""
    rm = num(get(d, "ratio_median")) or ratio(median(get(d, "request")), median(get(d, "baseline")))
    rp = num(get(d, "ratio_p95")) or ratio(p95(get(d, "request")), p95(get(d, "baseline")))
    return rm, rp


def decisions(doc: Doc) -> str:
    rows, sentences = [], []
    cases: list[tuple[str, str, Any, str]] = [
        ("LocalExecutor (the embedded default)", "decision_local", doc.data("decision_local"), ""),
        ("CeleryExecutor", "decision_celery", doc.data("decision_celery"), ""),
    ]
    opened = get(doc.data("waiting"), "decision_open")
    cases.append((f"LocalExecutor, {get(opened, 'open_requests') or 'hundreds of'} requests open", "waiting",
                  opened, f"{get(opened, 'open_requests')} open"))
    for mode, name, d, open_size in cases:
        figure = f"decision → next task, {mode}"
        target = f"≤ {DECISION_RATIO}× Airflow's one-decision DAG, median and p95"
        if not isinstance(d, dict) or median(get(d, "request")) is None:
            doc.not_measured(figure, target, name)
            rows.append(f"| {mode} | {NOT_MEASURED} | | | | | {doc.cite(name) if d is not None else ''} |")
            continue
        rm, rp = _ratios(d)
        ok = None if rm is None or rp is None else rm <= DECISION_RATIO and rp <= DECISION_RATIO
        req, base = get(d, "request"), get(d, "baseline")
        n, asked = get(req, "n"), get(d, "asked")
        size = (f"{n} of {asked} decisions" if asked and n != asked else f"{n} decisions") + (
            f" with {open_size}" if open_size else "")
        if get(d, "timed_out"):
            size += ", cut by the time bound"
        said = doc.target(figure, target, name, f"median {s(median(req))} ({x(rm)}), p95 {s(p95(req))} ({x(rp)})",
                          f"median {s(median(base))}, p95 {s(p95(base))}", ok, size=f"{size}; baseline alike",
                          cause=(doc.cause(name, "decision_open") if open_size else doc.cause(name))
                          or causes.decision(d))
        rows.append(f"| {mode} | {size} | {s(median(req))} / {s(p95(req))} | {s(median(base))} / {s(p95(base))} | "
                    f"{x(rm)} / {x(rp)} | {said} | {doc.cite(name)} |")
        failed = get(d, "failed_tasks")
        idle = num(get(d, "scheduler_idle_cpu"))
        sentences.append(f"{mode}: decision → next task {spread_text(req)}, against {spread_text(base)} for "
                         f"Airflow's own one-decision DAG in the same run: {x(rm)} at the median and {x(rp)} at "
                         f"p95, {said}"
                         + (f"; {failed} failed task instances" if failed is not None else "")
                         + (f"; the scheduler used {idle:.0%} of a core while every run waited" if idle is not None
                            else "") + f" ({doc.cite(name)}).")
    return ("| mode | size | request median / p95 | baseline median / p95 | ratio median / p95 | "
            f"≤ {DECISION_RATIO}× | raw file |\n|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
            + "\n".join(f"- {line}" for line in sentences) + "\n")


def parse_time(doc: Doc) -> str:
    d = doc.data("parse_time")
    req, base = get(d, "request"), get(d, "baseline")
    figure, target = "DAG parse time per task", f"≤ {PARSE_RATIO}× Airflow's HITL example per task"
    per = num(get(d, "ratio_per_task")) or ratio(num(get(req, "per_task_ms")), num(get(base, "per_task_ms")))
    if per is None:
        doc.not_measured(figure, target, "parse_time")
        return f"Per-task parse time: {NOT_MEASURED}" + (f" ({doc.cite('parse_time')})." if d else ".") + "\n"

    def row(what: str, p: Any) -> str:
        return (f"| {what} | `{get(p, 'dag_id')}` | {get(p, 'tasks')} | {_ms(get(p, 'median_ms'))} | "
                f"{_ms(get(p, 'p95_ms'))} | {_ms(get(p, 'per_task_ms'))} |")

    rounds = get(d, "rounds")
    size = f"{rounds} parses of each file" if rounds else None
    said = doc.target(figure, target, "parse_time", f"{_ms(get(req, 'per_task_ms'))} a task ({x(per)})",
                      f"{_ms(get(base, 'per_task_ms'))} a task", per <= PARSE_RATIO, size=size,
                      cause=doc.cause("parse_time") or causes.parse(d))
    return (f"From {doc.cite('parse_time')}:\n\n| DAG | dag id | tasks | median parse | p95 | median per task |\n"
            "|---|---|---|---|---|---|\n"
            + row("the request DAG", req) + "\n" + row("Airflow's HITL example (baseline)", base) + "\n\n"
            + f"Parsing the request DAG costs {_ms(get(req, 'per_task_ms'))} a task against "
            f"{_ms(get(base, 'per_task_ms'))} for the example, {x(per)}: {said} ({doc.cite('parse_time')}).\n")


def _ms(value: Any) -> str:
    v = num(value)
    return NOT_MEASURED if v is None else f"{v:.1f} ms"


STEPS = (("backup_policy", "step 5: backup policy live"),
         ("restore_to_server", "step 6: restore onto the unit's server"),
         ("restore_archive", "step 6: Restore File (archive)"))


def request_timing(doc: Doc) -> str:
    d = doc.data("request_timing")
    rows, lines = [], []
    for key, figure in STEPS:
        step = get(d, "steps", key)
        target = f"≤ {STEP_RATIO}× the best by-hand command over the same path"
        airflow, hand = get(step, "airflow_s"), get(step, "by_hand_s")
        r = num(get(step, "ratio_median")) or ratio(median(airflow), median(hand))
        if r is None:
            doc.not_measured(figure, target, "request_timing")
            rows.append(f"| {figure} | {NOT_MEASURED} | | | | |")
            continue
        command = get(step, "by_hand_command") or "not recorded"
        said = doc.target(figure + " (Airflow tasks)", target, "request_timing",
                          f"{s(median(airflow))} ({x(r)})", f"{s(median(hand))}: `{command}`", r <= STEP_RATIO,
                          size=_size_of(d),
                          cause=doc.cause("request_timing", "steps", key) or causes.step(d, key))
        rows.append(f"| {figure} | {spread_text(airflow)} | {spread_text(hand)} | {cell(f'`{command}`')} | {x(r)} | "
                    f"{said} |")
        running = median(get(step, "airflow_running_s"))
        tasks = get(step, "airflow_tasks")
        own = (f"; the tasks{' (' + ', '.join(f'`{t}`' for t in tasks) + ')' if isinstance(tasks, list) else ''} "
               f"ran a median {s(running)} themselves, the rest is Airflow's hand-overs between them"
               if running is not None else "")
        lines.append(f"{figure}: through the request's Airflow tasks {spread_text(airflow)}, by hand "
                     f"{spread_text(hand)}, {x(r)} at the median: {said}{own} ({doc.cite('request_timing')}).")
    e2e = get(d, "end_to_end")
    for what, key, hand_key, ratio_key in (
            ("request filed → backup policy live", "filed_to_policy_live_s", "by_hand_policy_s", "ratio_policy"),
            ("request filed → restore delivered", "filed_to_restore_delivered_s", "by_hand_restore_s",
             "ratio_restore")):
        value, hand = get(e2e, key), get(e2e, hand_key)
        r = num(get(e2e, ratio_key)) or ratio(median(value), median(hand))
        figure = f"end to end, {what}, every decision answered at once"
        if r is None:
            doc.not_measured(figure, "no fixed target: against the sum of the by-hand commands", "request_timing")
            lines.append(f"End to end, {what}: {NOT_MEASURED}.")
            continue
        doc.target(figure, "no fixed target: against the sum of the by-hand commands", "request_timing",
                   f"{s(median(value))} ({x(r)} the by-hand floor)", f"{s(median(hand))} by hand", None,
                   size=_size_of(d), no_target=True)
        lines.append(f"End to end, {what}: {spread_text(value)}, against {spread_text(hand)} for the by-hand "
                     f"commands the same work needs, {x(r)} that floor; no fixed target "
                     f"({doc.cite('request_timing')}).")
    return (f"From {doc.cite('request_timing')}:\n\n| step | Airflow tasks | by hand | by-hand command | "
            f"ratio (median) | ≤ {STEP_RATIO}× |\n|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
            + "\n".join(f"- {line}" for line in lines) + "\n")


def _size_of(d: dict[str, Any] | None) -> str | None:
    """A raw file's own account of its size (`mib`, `files`, `rounds`), if it gives one."""
    parts = []
    if num(get(d, "mib")) is not None:
        parts.append(f"{get(d, 'mib')} MiB" + (f" in {get(d, 'files')} files" if get(d, "files") else ""))
    if num(get(d, "rounds")) is not None:
        parts.append(f"{get(d, 'rounds')} rounds")
    return ", ".join(parts) or None


def waiting(doc: Doc) -> str:
    data = doc.data("waiting") or {}
    hitl, poke = obj(data.get("hitl")), obj(data.get("poke"))

    def mem(d: dict[str, Any], component: str) -> str:
        rss = obj(get(d, "rss_bytes", component))
        pss = obj(get(d, "pss_bytes", component))
        return f"{mib(get(rss, 'max'))} RSS, {mib(get(pss, 'max'))} PSS" if rss else "–"

    def pools(d: dict[str, Any]) -> str:
        return "; ".join(f"{name}: {get(p, 'occupied_slots') or 0} of {get(p, 'slots')} occupied at most"
                         for name, p in obj(d.get("pools")).items()) or "–"

    def col(d: dict[str, Any]) -> list[str]:
        if not d or d.get("skipped"):
            return [NOT_MEASURED] * 12
        loop = obj(d.get("scheduler_loop_s"))
        return [
            str(d.get("triggered", "–")),
            s(d.get("all_waiting_s") if "all_waiting_s" in d else d.get("all_started_s")),
            str(d.get("slots_held_max", "–")),
            f"{dash(median(d.get('busy_workers')))} median, {dash(get(d, 'busy_workers', 'max'))} max of "
            f"{dash(d.get('workers'))}",
            f"{dash(median(d.get('queued_tis')))} / {dash(median(d.get('scheduled_tis')))}",
            pools(d),
            (f"{s(loop.get('median'))} / {s(loop.get('p95'))} ({loop.get('n')} loops)" if loop
             else str(d.get("scheduler_loop_note", "not emitted")).split(";")[0]),
            mem(d, "api-server"),
            mem(d, "scheduler"),
            f"{mib(d.get('metadata_db_bytes_idle'))} → {mib(d.get('metadata_db_bytes'))}",
            ("wedged" if d.get("wedged") else f"drained in {s(d.get('drained_s'))}") if "drained" in d
            else f"{dash(d.get('waiting_at_end'))} still waiting at the end",
            "yes" if d.get("timed_out") else "no",
        ]

    labels = ["runs triggered", "all waiting (hitl) / every sensor started (poke)",
              "task instances of the DAG running at once, max (slots held)", "LocalExecutor workers busy",
              "queued / scheduled task instances, median", "pools", "scheduler loop, median / p95",
              "api-server memory, peak", "scheduler memory (with its workers and tasks), peak",
              "metadata database, idle → at the end", "after the window", "hit the time bound"]
    rows = "\n".join(f"| {label} | {a} | {b} |" for label, a, b in zip(labels, col(hitl), col(poke), strict=True))
    n = data.get("n")
    size = f"{n} requests" if n else None
    held = num(hitl.get("slots_held_max"))
    loop_p95 = p95(hitl.get("scheduler_loop_s"))
    if held is None:
        doc.not_measured("requests waiting: worker slots held", "none", "waiting")
    else:
        doc.target("requests waiting: worker slots held", "none", "waiting", f"{held:.0f}",
                   f"poke sensors: {poke.get('slots_held_max', NOT_MEASURED)}", held == 0, size=size)
    if loop_p95 is None:
        doc.not_measured("requests waiting: scheduler loop p95", "≤ 1 s", "waiting")
    else:
        doc.target("requests waiting: scheduler loop p95", "≤ 1 s", "waiting", s(loop_p95),
                   f"poke sensors: {s(p95(poke.get('scheduler_loop_s')))}", loop_p95 <= 1, size=size)
    return (f"| {n} waiting | human-in-the-loop (the request DAG) | poke-mode sensors (baseline) |\n"
            "|---|---|---|\n" + rows + f"\n\nAll figures of this table: {doc.cite('waiting')}; measured over a "
            f"window of {s(data.get('window_s'))} with all requests waiting (baseline: {s(data.get('poke_window_s'))} "
            "from the end of triggering), sampled every 2 s; the loop time is the scheduler's own StatsD timer "
            "`scheduler.scheduler_loop_duration`. Decisions answered with these requests open: under "
            "*Decision → next task*.\n")


def _failures(d: dict[str, Any]) -> int:
    return int(num(d.get("runs_failed")) or 0) + int(num(d.get("task_instances_failed")) or 0)


def _mail(d: dict[str, Any]) -> str:
    m = obj(d.get("mail"))
    if not m:
        return NOT_MEASURED
    return (f"{m.get('received_total')}/{m.get('expected_total')} ({m.get('runs_exact')}/{d.get('requests')} runs "
            f"exact, {m.get('duplicates')} duplicates)")


def _run_rows(runs: list[tuple[str, str, dict[str, Any]]], doc: Doc) -> str:
    def row(label: str, value: Callable[[dict[str, Any]], str]) -> str:
        return f"| {label} | " + " | ".join(value(d) for _, _, d in runs) + " |"

    def two(key: str, second: str = "p95") -> Callable[[dict[str, Any]], str]:
        return lambda d: (f"{s(get(d, key, 'median'))} / {s(get(d, key, second))}" if d.get(key) else "–")

    return "\n".join([
        "| | " + " | ".join(label for label, _, _ in runs) + " |",
        "|---|" + "---|" * len(runs),
        row("raw file", lambda d: doc.cite(str(d.get("_name")))),
        row("requests", lambda d: str(d.get("requests", NOT_MEASURED))),
        row("servers of the inventory used", lambda d: (f"{len(d['servers'])} ({', '.join(map(str, d['servers']))})"
                                                       if isinstance(d.get("servers"), list) else NOT_MEASURED)),
        row("stack healthy from cold", lambda d: s(d.get("stack_start_s"))),
        row("all requests filed (REST, one after the other)", lambda d: s(d.get("triggered_s"))),
        row("**first trigger → all waiting at the director**", lambda d: s(d.get("all_waiting_director_s"))),
        row("**first trigger → every run ended**", lambda d: s(d.get("first_trigger_to_all_ended_s"))),
        row("first answer → every run ended", lambda d: s(d.get("first_answer_to_all_ended_s"))),
        row("order (step 4) → run end, median / p95", two("order_to_end_s")),
        row("rejection → run end, median / p95", two("rejection_to_end_s")),
        row(f"rejection e-mail queued → run end, median / max (target ≤ {REJECTION_S} s)",
            two("rejection_queued_to_end_s", "max")),
        row("runs ended / failed", lambda d: f"{dash(d.get('runs_ended'))} / {dash(d.get('runs_failed'))}"),
        row("failed task instances", lambda d: dash(d.get("task_instances_failed"))),
        row("task instances retried", lambda d: f"{dash(d.get('task_instances_retried'))} "
            + (f"({', '.join(f'{k} {v}' for k, v in d['retried_by_task'].items())})"
               if isinstance(d.get("retried_by_task"), dict) and d["retried_by_task"] else "")),
        row("health probe not healthy (samples)", lambda d: f"{dash(get(d, 'health', 'unhealthy_samples'))} of "
            f"{dash(get(d, 'health', 'samples'))}"),
        row("e-mails received / expected", _mail),
        row("peak resident memory of the stack", lambda d: (f"{d['peak_rss_mib']:.0f} MiB"
                                                            if num(d.get("peak_rss_mib")) is not None else "–")),
        row("ended within the bound", lambda d: "no (timed out)" if d.get("timed_out") else "yes"),
    ])


def burst(doc: Doc) -> str:
    runs = [(label, name, {**d, "_name": name}) for label, name in (("approve all", "burst_approve"),
                                                                    ("reject all", "burst_reject"))
            if (d := doc.data(name)) is not None]
    lines = []
    for label, name, d in runs:
        size = f"{d.get('requests')} requests"
        servers = d.get("servers") if isinstance(d.get("servers"), list) else None
        waiting_s, failures = num(d.get("all_waiting_director_s")), _failures(d)
        said = doc.target(f"100 at once ({label}): all waiting at the director", f"≤ {BURST_WAITING_S} s, no failures",
                          name, f"{s(waiting_s)}, {failures} failures", "–",
                          None if waiting_s is None else waiting_s <= BURST_WAITING_S and failures == 0, size=size)
        lines.append(f"{label}: all {d.get('requests')} waiting at the director {s(waiting_s)} after the first "
                     f"trigger, {failures} failed runs and task instances: {said}; every run ended "
                     f"{s(d.get('first_trigger_to_all_ended_s'))} after the first trigger ({doc.cite(name)}).")
        spread_ok = None if servers is None else len(set(servers)) > 1
        doc.target(f"100 at once ({label}): spread over several servers", "more than one server", name,
                   NOT_MEASURED if servers is None else f"{len(set(servers))} servers", "–", spread_ok, size=size)
        mail = obj(d.get("mail"))
        exact = (None if not mail else mail.get("runs_exact") == d.get("requests") and not mail.get("duplicates"))
        doc.target(f"100 at once ({label}): e-mails per run", "exactly as expected", name, _mail(d), "–", exact,
                   size=size)
        if label == "reject all":
            queued = d.get("rejection_queued_to_end_s")
            worst = num(get(queued, "max"))
            said = doc.target("100 rejected: rejection e-mail queued → run end", f"every run ≤ {REJECTION_S} s",
                              name, f"max {s(worst)}, median {s(median(queued))}", "–",
                              None if worst is None else worst <= REJECTION_S, size=size)
            lines.append(f"With all {d.get('requests')} rejected, a run ended at most {s(worst)} (median "
                         f"{s(median(queued))}) after its rejection e-mail was queued: {said} ({doc.cite(name)}).")
    for label, name in (("approve all", "burst_approve"), ("reject all", "burst_reject")):
        if doc.data(name) is None:
            for figure, target in ((f"100 at once ({label}): all waiting at the director",
                                    f"≤ {BURST_WAITING_S} s, no failures"),
                                   (f"100 at once ({label}): spread over several servers", "more than one server")):
                doc.not_measured(figure, target, name)
            if name == "burst_reject":
                doc.not_measured("100 rejected: rejection e-mail queued → run end", f"every run ≤ {REJECTION_S} s",
                                 name)
    reasons = [f"- {label}: `` {reason} `` ({doc.cite(name)})" for label, name, d in runs
               for reason in (d.get("retry_reasons") if isinstance(d.get("retry_reasons"), list) else [])]
    return ((_run_rows(runs, doc) + "\n\n" if runs else "")
            + "\n".join(f"- {line}" for line in lines) + "\n"
            + ("\nWhy tasks were retried (last error line of the first try):\n" + "\n".join(reasons) + "\n"
               if reasons else ""))


def throughput(doc: Doc) -> str:
    d = doc.data("throughput")
    if d is None:
        for figure in ("step 5 script: backup from the deposited server", "step 6 script: Restore File (archive)",
                       "step 6 script: restore onto the unit's server"):
            doc.not_measured(figure, f"≤ {STEP_RATIO}× by hand", "throughput")
        return ""
    backup, archive, server = obj(d.get("backup")), obj(d.get("archive")), obj(d.get("restore_to_server"))
    baselines = obj(d.get("archive_baselines"))
    sha = median(baselines.get("sha256sum_s")) if baselines else median(archive.get("by_hand_s"))
    openssl = median(baselines.get("openssl_dgst_s")) if baselines else median(archive.get("by_hand_openssl_s"))
    known = [(v, what) for v, what in ((sha, "`sha256sum`"), (openssl, "`openssl dgst`")) if v is not None]
    fastest, fastest_name = min(known) if known else (None, NOT_MEASURED)
    rows, lines = [], []
    total = num(d.get("mib"))
    size = _size_of(d)

    def rate(v: float | None) -> str:
        return f" ({total / v:.0f} MiB/s)" if total and v else ""

    for figure, step, hand, hand_what in (
            ("step 5 script: backup from the deposited server", backup, median(backup.get("by_hand_s")),
             "`restic backup` on the server, same push path"),
            ("step 6 script: Restore File (archive)", archive, fastest,
             f"`restic dump --archive tar | zstd -T0 -1`, then the faster hash by hand: {fastest_name}"),
            ("step 6 script: restore onto the unit's server", server, median(server.get("by_hand_s")),
             "`restic restore` through the push path")):
        pipe = median(step.get("pipeline_s"))
        r = ratio(pipe, hand)
        said = doc.target(figure, f"≤ {STEP_RATIO}× by hand", "throughput", f"{s(pipe)} ({x(r)})",
                          f"{s(hand)}: {hand_what}", None if r is None else r <= STEP_RATIO, size=size)
        rows.append(f"| {figure} | {s(pipe)}{rate(pipe)} | {cell(hand_what)}: {s(hand)}{rate(hand)} | {x(r)} | "
                    f"{said} |")
    lines.append(f"The archive's by-hand baselines in this run: `sha256sum` {s(sha)}, `openssl dgst` {s(openssl)}; "
                 f"the faster, {fastest_name}, is the baseline ({doc.cite('throughput')}).")
    if median(backup.get("local_disk_s")) is not None:
        lines.append(f"`restic backup` into a repository on the server's own disk, no network: "
                     f"{s(median(backup.get('local_disk_s')))} ({doc.cite('throughput')}).")
    if median(archive.get("verify_s")) is not None:
        lines.append(f"Checking the delivered archive (`verify_delivery`) took {s(median(archive.get('verify_s')))} "
                     f"({doc.cite('throughput')}).")
    return (f"From {doc.cite('throughput')}:\n\n| step | script over SSH | by hand | ratio | ≤ {STEP_RATIO}× |\n"
            "|---|---|---|---|---|\n" + "\n".join(rows)
            + "\n\n" + "\n".join(f"- {line}" for line in lines) + "\n")


def drill(doc: Doc) -> str:
    d = doc.data("drill_restore")
    figure, target = "recoverability drill's restore", f"≤ {STEP_RATIO}× `restic restore` by hand"
    drill_s, hand = median(get(d, "drill_restore_s")), median(get(d, "by_hand_s"))
    r = num(get(d, "ratio")) or ratio(drill_s, hand)
    if r is None:
        doc.not_measured(figure, target, "drill_restore")
        return f"The drill's restore: {NOT_MEASURED}" + (f" ({doc.cite('drill_restore')})." if d else ".") + "\n"
    said = doc.target(figure, target, "drill_restore", f"{s(drill_s)} ({x(r)})", f"{s(hand)} by hand",
                      r <= STEP_RATIO, size=_size_of(d))
    whole = num(get(d, "whole_drill_s"))
    return (f"The drill restored {get(d, 'mib')} MiB in {get(d, 'files')} files in {s(drill_s)}, against "
            f"{s(hand)} for `restic restore` of the same files by hand over the same push path, {x(r)}: {said} "
            f"({doc.cite('drill_restore')}).\n"
            + (f"The whole drill (plan, restore, comparison, check slice {get(d, 'check_subset')}) took {s(whole)} "
               f"({doc.cite('drill_restore')}).\n" if whole is not None else ""))


def board(doc: Doc) -> str:
    # bench/waiting.py measures the board with its 500 requests open (issue 23's size).
    source = "waiting"
    d = obj(get(doc.data(source), "board"))
    b, a = get(d, "board_s"), get(d, "airflow_s")
    bp, r = p95(b), num(get(d, "ratio_p95")) or ratio(p95(b), p95(a))
    size = (f"{get(d, 'requests')} open requests, {get(d, 'servers')} servers, {get(d, 'rounds')} calls"
            if d else None)
    if bp is None or r is None:
        doc.not_measured("board data p95", f"≤ {BOARD_P95_S * 1000:.0f} ms", source)
        doc.not_measured("board data p95 against Airflow's run list", f"≤ {BOARD_RATIO}×", source)
        return (f"The board: {NOT_MEASURED}" + (f" ({doc.cite(source)}" + (f": {get(d, 'error')}" if get(
            d, "error") else "") + ")." if d else ".") + "\n")
    doc.target("board data p95", f"≤ {BOARD_P95_S * 1000:.0f} ms", source, ms(bp), "–", bp <= BOARD_P95_S, size=size)
    said = doc.target("board data p95 against Airflow's run list", f"≤ {BOARD_RATIO}×", source, f"{x(r)}",
                      f"Airflow's run list p95 {ms(p95(a))}", r <= BOARD_RATIO, size=size,
                      cause=doc.cause(source, "board") or causes.board(d))
    page = (f" (its first page: {get(d, 'open_on_page')} of them, the worst first, and the counts of all)"
            if get(d, "open_on_page") is not None else "")
    text = (f"With {get(d, 'open_on_board')} requests open on the board{page} and {get(d, 'servers_on_board')} "
            f"servers, nothing changed between looks, the board's data took median {ms(median(b))}, p95 {ms(bp)}; "
            f"Airflow's own run list (`limit=100`) median {ms(median(a))}, p95 {ms(p95(a))}: {x(r)} at p95, {said} "
            f"({doc.cite(source)}).\n" + _timing(doc, source, d))
    changed = obj(get(d, "changed"))
    cb, ca = get(changed, "board_s"), get(changed, "airflow_s")
    cp, cr = p95(cb), num(get(changed, "ratio_p95")) or ratio(p95(cb), p95(ca))
    if cp is None or cr is None:
        doc.not_measured("board data p95 against Airflow's run list, a run changed before every look",
                         f"≤ {BOARD_RATIO}×", source)
        return text
    said = doc.target("board data p95 against Airflow's run list, a run changed before every look",
                      f"≤ {BOARD_RATIO}×", source, f"{x(cr)}", f"Airflow's run list p95 {ms(p95(ca))}",
                      cr <= BOARD_RATIO and cp <= BOARD_P95_S, size=size)
    return (text + f"With one task instance changed in Airflow's database before every look (the board reads that "
            f"run again, `bench.board.touch_a_task`): median {ms(median(cb))}, p95 {ms(cp)}; the run list median "
            f"{ms(median(ca))}, p95 {ms(p95(ca))}: {x(cr)} at p95, {said} ({doc.cite(source)}).\n"
            + _timing(doc, source, changed))


def _timing(doc: Doc, source: str, d: dict[str, Any] | None) -> str:
    timing = obj(get(d, "board_server_timing_s"))
    parts = ", ".join(f"{k} {ms(median(v))}" for k, v in timing.items()) if isinstance(timing, dict) else ""
    return (f"The board's own account of its median time (`Server-Timing`): {parts} ({doc.cite(source)}).\n"
            if parts else "")


def killed(doc: Doc) -> str:
    d = doc.data("killed_scheduler")
    figure, target = "decisions survive a killed scheduler", "all answerable, all end as answered"
    if not isinstance(get(d, "passed"), bool):
        doc.not_measured(figure, target, "killed_scheduler")
        return f"The drill: {NOT_MEASURED}.\n"
    said = doc.target(figure, target, "killed_scheduler", f"{'passed' if d['passed'] else 'failed'} in "
                      f"{s(d.get('seconds'))}", "–", d["passed"], size=f"{d.get('requests')} requests")
    return (f"{d.get('requests')} requests waiting at the director, the scheduler SIGKILLed and restarted, then all "
            f"rejected: {said}, the whole drill (stack start included) in {s(d.get('seconds'))} "
            f"({doc.cite('killed_scheduler')}).\n")


def memo(doc: Doc) -> str:
    d = doc.data("memo_render")
    kinds = get(d, "kinds")
    figure, target = "memo rendering, CPU per memo (median, slowest kind)", f"≤ {MEMO_S} s"
    if not isinstance(kinds, dict) or not kinds:
        doc.not_measured(figure, target, "memo_render")
        return f"Memo rendering: {NOT_MEASURED}.\n"
    rows = [f"| {kind} | {spread_text(get(k, 'wall_s'))} | {spread_text(get(k, 'cpu_s'))} | "
            f"{num(get(k, 'justified_share')) or 0:.0%} |" for kind, k in kinds.items()]
    cpus = [(median(get(k, "cpu_s")), kind) for kind, k in kinds.items() if median(get(k, "cpu_s")) is not None]
    worst, worst_kind = max(cpus) if cpus else (None, NOT_MEASURED)
    said = doc.target(figure, target, "memo_render", f"{s(worst)} ({worst_kind})", "–",
                      None if worst is None else worst <= MEMO_S, size=f"{len(kinds)} kinds, {get(d, 'rounds')} each")
    return (f"From {doc.cite('memo_render')}:\n\n| kind | wall | CPU | prose lines justified |\n|---|---|---|---|\n"
            + "\n".join(rows)
            + f"\n\nThe slowest kind, {worst_kind}, took a median {s(worst)} of CPU a memo: {said} "
            f"({doc.cite('memo_render')}).\n")


# (title, raw files, body, what is measured and how: method only, no figures)
SECTIONS: tuple[tuple[str, tuple[str, ...], Callable[[Doc], str], str], ...] = (
    ("Decision → next task start", ("decision_local", "decision_celery", "waiting"), decisions,
     "From the REST call that answers the director's decision to the start of `record_decision`, decisions "
     "answered one at a time. Baseline: `bench/dags/sb87_bench_one_decision.py`, one plain Airflow decision and "
     "one task, answered alternately on the same stack. The third row is measured by the waiting benchmark with "
     "its requests all open."),
    ("DAG parse time", ("parse_time",), parse_time,
     "What Airflow 3.3's dag-processor does with a file, timed in a fresh process that has imported and frozen "
     "what the dag-processor's manager has before it forks: the stability check, `DagBag(<file>)` and the "
     "serialisation of its DAG; the request DAG and Airflow's `example_hitl_operator` in turns, compared per "
     "task."),
    ("Steps 5 and 6 through the request's Airflow tasks", ("request_timing",), request_timing,
     "Each step as a request runs it (its Airflow tasks, on a stack), against the best command typed by hand "
     "over the same path; and end to end as a unit sees it, every decision answered at once, against the sum of "
     "the by-hand commands the same work needs."),
    ("Requests waiting for decisions", ("waiting",), waiting,
     "Requests triggered at once and left waiting at the director's decision, against the same waits made the "
     "pre-3.3 way, as poke-mode sensors (`bench/dags/sb87_bench_poke_wait.py`)."),
    ("100 requests at once (embedded default)", ("burst_approve", "burst_reject"), burst,
     "Sample requests spread over the inventory's servers, triggered as fast as the API takes them, the clock "
     "from the first trigger; every human step then answered for all (approve), or the director rejects all "
     "(reject), on a fresh stack each."),
    ("Steps 5 and 6 scripts against the backup tool by hand", ("throughput",), throughput,
     "One machine plays both hosts: the backup host (sshd on 127.0.0.1) and a deposited server (its own sshd, "
     "mount namespace and data on 127.0.0.2); the pipeline's scripts over SSH against the same work by hand."),
    ("Recoverability drill's restore", ("drill_restore",), drill,
     "The drill's `drill_restore` script on the deposited server against `restic restore` of the same files by "
     "hand through the same push path."),
    ("Operations board", ("waiting",), board,
     "`GET /sb87-board/api/board` as the IT Centre Director against Airflow's own "
     "`GET /api/v2/dags/~/dagRuns?state=running&limit=100`, alternating, on the waiting benchmark's stack with "
     "its requests open (`bench.board.measure_board`)."),
    ("Killed-scheduler drill", ("killed_scheduler",), killed,
     "The suite's `test_waiting_decisions_survive_a_killed_scheduler` in a pytest process and stack of its own."),
    ("Memo rendering", ("memo_render",), memo,
     "Every memo kind with the tests' long Thai data, rendered in one process; CPU time is the figure to read on "
     "a shared machine."),
)


def targets_table(doc: Doc) -> str:
    rows = [f"| {cell(t.figure)} | {cell(t.target)} | {cell(t.size)} | {cell(t.measured)} | {cell(t.baseline)} | "
            f"{'no fixed target' if t.no_target else verdict(t.ok)} | {doc.cite(*t.sources)} |" for t in doc.targets]
    return ("| figure | target | size | measured | baseline (same run) | | raw file |\n"
            "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")


def closing(doc: Doc) -> str:
    lines = []
    for t in doc.targets:
        if t.measured == NOT_MEASURED:
            lines.append(f"- {t.figure} ({t.target}): not measured in this run ({doc.cite(*t.sources)}).")
            continue
        outcome = "no fixed target" if t.no_target else verdict(t.ok)
        baseline = "" if t.baseline in ("–", "") else f", baseline {t.baseline}"
        line = f"- {t.figure} ({t.target}; {t.size}): {t.measured}{baseline}: {outcome} ({doc.cite(*t.sources)})."
        if t.ok is False:
            line += (f" Where the time goes: {t.cause}" if t.cause else
                     " The raw file measures no breakdown of this figure and records no profiled cause (`cause`): "
                     "profile before naming one.")
        lines.append(line)
    return "\n".join(lines) + "\n"
