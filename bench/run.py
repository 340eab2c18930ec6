"""`make bench`: every part of the benchmark, every table, one JSON file.

Each part runs in its own process (its own settings and DATABASE_URL) and
hands back JSON; this script only orchestrates, checks the targets and
prints. Ratios are taken against baselines measured in the same run.

    python -m bench.run                       # the full run (under 10 minutes on 2 cores)
    python -m bench.run --quick               # small N and short durations, for development
    python -m bench.run --load-seconds 30     # shorter mixed load
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import common


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 users per clinic, short runs (not for results).")
    parser.add_argument("--per-clinic", type=int, default=10_000, help="Users per clinic (10 clinics).")
    parser.add_argument("--load-seconds", type=float, default=45, help="Duration of each mixed load (before, after).")
    parser.add_argument("--rounds", type=int, default=5, help="wrk rounds per variant (parts 1 and 5).")
    parser.add_argument("--round-seconds", type=int, default=5, help="Seconds per wrk round (parts 1 and 5).")
    parser.add_argument("--iterations", type=int, default=30, help="Requests per measured admin page (part 3).")
    parser.add_argument("--audit-rows", type=int, default=100_000, help="Audit rows exported as CSV (part 5).")
    parser.add_argument("--pg-scales", default="1,10,100", help="Clinics on PostgreSQL at each Users-pages scale (part 3).")
    parser.add_argument("--logins", type=int, default=30, help="Logins per stack for the peers' code step (part 6).")
    parser.add_argument("--keep-db", action="store_true", help="Keep the PostgreSQL and SQLite bench databases.")
    parser.add_argument("--smoke", action="store_true", help="A few users and seconds: checks the bench's code (tests).")
    parser.add_argument("--out", default=str(common.RESULTS / "latest.json"),
                        help="JSON results; the table goes beside it (.md), and the plans of part 3 into its folder.")
    args = parser.parse_args(argv)
    if args.quick:
        args.per_clinic, args.load_seconds, args.rounds, args.round_seconds, args.iterations = 1_000, 6, 2, 1, 10
        args.audit_rows, args.logins = 10_000, 10
    if args.smoke:  # tests/test_bench_smoke.py: every part, tiny, well under 60 s
        args.per_clinic, args.load_seconds, args.rounds, args.round_seconds, args.iterations = 60, 3, 1, 1, 2
        args.pg_scales, args.logins, args.audit_rows = "1,2", 3, 500
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    global WAIT_FOR_QUIET
    WAIT_FOR_QUIET = not (args.smoke or args.quick)  # the smoke test checks the code; --quick is a trial (about 2 minutes)
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": common.machine_info(),
        "parameters": vars(args),
    }
    sqlite_file = common.SQLITE_FILE
    sqlite_file.unlink(missing_ok=True)
    common.recreate_pg_database()
    pg = {"DATABASE_URL": common.PG_URL}
    # --quick: fewer timed logins, 1 s wrk runs and warm-up, sessions that start within 3 s of a 6 s load.
    # --smoke: fewer still, no wrk warm-up, the peers timed at once, sessions that all start within a second.
    small = {"code_step": [], "wrk": [], "mixed_load": [], "peers": [], "instructions": []}
    if args.quick:
        small = {"code_step": ["--iterations", "10", "--hasher-iterations", "2"], "wrk": ["--warmup-seconds", "1"],
                 "peers": [], "mixed_load": ["--stagger", "3", "--baseline-repeats", "5"],
                 "instructions": ["--requests", "5", "--no-valgrind"]}  # a count takes a minute or more: not in a trial
    if args.smoke:  # the instructions part runs its requests without valgrind: a minute per count is too long here
        small = {"code_step": ["--iterations", "3", "--hasher-iterations", "1"], "wrk": ["--warmup-seconds", "0"],
                 "peers": ["--side-by-side"], "instructions": ["--requests", "2", "--no-valgrind"],
                 "mixed_load": ["--stagger", "1", "--baseline-repeats", "3", "--staff-sessions", "5", "--admin-sessions", "2"]}
    sqlite_pages = ["bench.admin_pages", "--per-clinic", str(args.per_clinic), "--iterations", str(args.iterations)]
    sqlite_env = {"DATABASE_URL": common.SQLITE_URL}
    # --smoke checks the code, not the numbers: the SQLite part (its own database file) runs beside the rest.
    beside = ThreadPoolExecutor(1) if args.smoke else None
    try:
        if beside:
            sqlite_part = beside.submit(common.run_step, *sqlite_pages, env=sqlite_env)
        else:
            step("3. admin pages, SQLite")
            results["admin_pages_sqlite"] = common.run_step(*sqlite_pages, env=sqlite_env)
        step("3. admin pages, PostgreSQL")
        results["admin_pages_postgresql"] = common.run_step(
            "bench.admin_pages", "--per-clinic", str(args.per_clinic), "--iterations", str(args.iterations),
            "--scales", args.pg_scales, "--plans-dir", str(Path(args.out).resolve().parent), env=pg,
        )
        step("2. code step vs full login")
        # Persistent connections, as the README's production settings (DB_CONN_MAX_AGE=60) and parts 1, 4 and 6.
        results["code_step"] = common.run_step("bench.code_step", *small["code_step"], env={**pg, "DB_CONN_MAX_AGE": "60"})
        step("1. per-request cost of enforcement")
        results["enforcement"] = common.run_step(
            "bench.enforcement", "--rounds", str(args.rounds), "--seconds", str(args.round_seconds), *small["wrk"], env=pg
        )
        step("1. instructions per verified request (callgrind)")
        results["instructions"] = common.run_step("bench.instructions", *small["instructions"], env=pg, timeout=1800)
        step("6. peers: ClinicAuth, django-two-factor-auth, django-allauth mfa, bare Django")
        results["peers"] = common.run_step(
            "bench.peers_part", "--logins", str(args.logins), "--rounds", str(args.rounds),
            "--seconds", str(args.round_seconds), *small["wrk"], *small["peers"], env=pg,
        )
        step(PART_4_BEFORE)
        results["mixed_load_before"] = common.run_step(
            "bench.mixed_load", "--seconds", str(args.load_seconds), "--per-clinic", str(args.per_clinic),
            "--hasher", "django-defaults", *small["mixed_load"], env=pg,
        )
        step(PART_4_AFTER)
        results["mixed_load"] = common.run_step(
            "bench.mixed_load", "--seconds", str(args.load_seconds), "--per-clinic", str(args.per_clinic),
            "--hasher", "shipped", *small["mixed_load"], env=pg,
        )
        step("5. audit log CSV export")
        results["audit_export"] = common.run_step("bench.audit_export", "--rows", str(args.audit_rows), env=pg)
        if beside:
            results["admin_pages_sqlite"] = sqlite_part.result()
    finally:
        if beside:
            beside.shutdown()
        if not args.keep_db:
            common.drop_pg_database()
            sqlite_file.unlink(missing_ok=True)
    results["total_seconds"] = round(time.monotonic() - started, 1)
    results["load_average_before_each_part"] = LOAD_BEFORE
    results["quiet_machine_before_each_part"] = QUIET_BEFORE
    results["seconds_of_each_part"] = part_seconds()
    results["targets"] = targets(results)
    common.write_json(args.out, results)
    report = render(results)
    Path(args.out).with_suffix(".md").write_text(report)
    print(report)
    print(f"Wrote {args.out} ({results['total_seconds']} s).")
    return 0


PART_4_BEFORE = "4. mixed load, before: Django's default Argon2 parameters"
PART_4_AFTER = "4. mixed load, as shipped (gunicorn.conf.py, ClinicAuth's Argon2 parameters)"
LOAD_BEFORE: dict[str, float] = {}
STARTED: dict[str, float] = {}


QUIET_BEFORE: dict[str, dict] = {}
WAIT_FOR_QUIET = True


def step(title: str) -> None:
    """Announce a part, once the machine is quiet, noting the 1-minute load average: other work on the
    machine skews wall-clock figures."""
    QUIET_BEFORE[title] = wait_for_quiet_machine() if WAIT_FOR_QUIET else {}
    LOAD_BEFORE[title] = round(os.getloadavg()[0], 2)
    STARTED[title] = time.monotonic()
    print(f"== {title} (load average {LOAD_BEFORE[title]}; {QUIET_BEFORE[title]})", file=sys.stderr, flush=True)


def wait_for_quiet_machine(*, busy_below: float = 0.15, longest: float = 20.0) -> dict:
    """Wait (at most `longest` seconds) until the machine was less than `busy_below` busy for a whole second:
    what the last part started (PostgreSQL's autovacuum and checkpoints after its writes, servers still
    shutting down) would otherwise run during the next one. The 1-minute load average lags by minutes."""
    started = time.monotonic()
    while True:
        before = common.system_cpu_ticks()
        time.sleep(1)
        busy = common.busy_fraction(before, common.system_cpu_ticks())
        waited = time.monotonic() - started
        if busy < busy_below or waited >= longest:
            return {"waited_s": round(waited, 1), "busy_last_second": busy}


def part_seconds() -> dict[str, float]:
    """How long each part took (until the next one started, or until now)."""
    names = list(STARTED)
    ends = [STARTED[n] for n in names[1:]] + [time.monotonic()]
    return {name: round(end - STARTED[name], 1) for name, end in zip(names, ends)}


# --- targets ------------------------------------------------------------------


def targets(r: dict) -> list[dict]:
    enf, code, load = r["enforcement"], r["code_step"], r["mixed_load"]
    checks = [
        ("1", "TwoFactorMiddleware adds 0 queries per verified request", enf["extra_queries_a_minus_b"] == 0,
         f"{enf['extra_queries_a_minus_b']:+d}"),
        ("1", "throughput (a)/(b) >= 0.95 (paired per-round median)", enf["throughput_ratio_a_over_b_paired_median"] >= 0.95,
         f"{enf['throughput_ratio_a_over_b_paired_median']:.3f}"),
        ("1", "capacity (a)/(b) >= 0.95 (app-server CPU per request)", enf["capacity_ratio_a_over_b"] >= 0.95,
         f"{enf['capacity_ratio_a_over_b']:.3f}"),
        ("2", "code step median < 5 ms (whole request, in-process)", code["code_step_median_ms"] < 5,
         f"{code['code_step_median_ms']} ms (p95 {code.get('code_step_p95_ms')} ms; load average "
         f"{code.get('load_average_1min_after')})"),
    ]
    for key in ("admin_pages_sqlite", "admin_pages_postgresql"):
        db = r[key]["database"]
        limit = 25 if db == "postgresql" else 50  # the goal: < 25 ms on PostgreSQL up to a million users
        pages = ("user_list", "user_list_middle_page", "user_list_last_page", "user_list_without_2fa", "search",
                 "search_no_match", "view")
        for scale in r[key]["scales"]:
            for page in pages:
                m = scale["pages"][page]
                checks.append(("3", f"{db} {scale['total_users']:,} users: {page} < {limit} ms median", m["median_ms"] < limit,
                               f"{m['median_ms']} ms, {m['queries']} queries"))
        counts = {page: sorted({s["pages"][page]["queries"] for s in r[key]["scales"]}) for page in pages}
        constant = all(s["pages"][page]["queries_constant"] for s in r[key]["scales"] for page in pages)
        fixed = constant and all(len(v) == 1 for v in counts.values())
        checks.append(("3", f"{db}: same query count per page at every scale", fixed,
                       ", ".join(f"{p}={v}" for p, v in counts.items())))
    peers = r["peers"]
    for peer, c in peers["clinicauth_over_peer"].items():
        checks += [
            ("6", f"code step median: ClinicAuth / {peer} < 1", c["code_step_median_ratio"] < 1, f"{c['code_step_median_ratio']}"),
            ("6", f"verified page throughput: ClinicAuth / {peer} > 1 (paired)", c["throughput_ratio_paired_median"] > 1,
             f"{c['throughput_ratio_paired_median']}"),
        ]
    ml = load["load"]
    page_p99 = ml["by_kind"]["page"]["p99_ms"]
    sign_in_p99 = ml["by_kind"].get("sign_in", {}).get("p99_ms", float("nan"))
    checks += [
        ("4", "mixed load, as shipped: staff page-view p99 <= 50 ms", page_p99 <= 50, f"{page_p99} ms"),
        ("4", "mixed load, as shipped: sign-in p99 <= 3 s (login page to Home)", sign_in_p99 <= 3000, f"{sign_in_p99} ms"),
        ("4", "mixed load: zero errors", ml["errors"] == 0 and load["hung_threads"] == 0, f"{ml['errors']} errors"),
        ("4", "mixed load: wrong codes never accepted", not load["code_brute_force"]["target_logged_in_by_attacker"],
         f"{load['code_brute_force'].get('accepted', 0)} accepted"),
        ("4", f"mixed load: code throttle held (<= {load['code_brute_force']['max_evaluated_by_design']} wrong codes evaluated)",
         load["code_brute_force"]["evaluated_failures_server_side"] <= load["code_brute_force"]["max_evaluated_by_design"],
         f"{load['code_brute_force']['evaluated_failures_server_side']} of {load['code_brute_force'].get('attempts', 0)}"),
        ("4", f"mixed load: password throttle held (<= {load['password_brute_force']['max_evaluated_by_design']} guesses evaluated)",
         load["password_brute_force"].get("rejected_after_check", 0) <= (load["password_brute_force"]["max_evaluated_by_design"] or 10)
         and not load["password_brute_force"].get("accepted"),
         f"{load['password_brute_force'].get('rejected_after_check', 0)} of {load['password_brute_force'].get('attempts', 0)}"),
    ]
    ax = r["audit_export"]
    checks.append(("5", "CSV export streams: server peak memory grows < 50 MB", ax["peak_rss_growth_mb"] < 50,
                   f"{ax['peak_rss_growth_mb']} MB RSS, {ax['python_peak_alloc_mb_during_export']} MB Python peak"))
    return [{"part": p, "target": t, "met": bool(ok), "value": v} for p, t, ok, v in checks]


# --- the table -------------------------------------------------------------------


def render(r: dict) -> str:
    m = r["machine"]
    out = [
        f"# ClinicAuth benchmark, {r['date']}",
        "",
        f"Machine: {m['cores']} cores, {m['cpu_model']}, {m['memory_gb']} GB RAM; {m['os']}; "
        f"Python {m['python']}; PostgreSQL {m['postgresql']}; SQLite {m['sqlite']}; {m['wrk']}. "
        + (f"Speed: `sum(range(10**6))` {m['speed']['python_loop_ms']} ms, one Argon2 check "
           f"{m['speed']['argon2_check_ms']} ms (medians of 5, before the parts). " if m.get("speed") else "")
        + f"Total run time {r['total_seconds']} s ("
        + "; ".join(f"{k}: {v} s" for k, v in r.get("seconds_of_each_part", {}).items())
        + "). 1-minute load average before each part: "
        + "; ".join(f"{k}: {v}" for k, v in r["load_average_before_each_part"].items())
        + " (above ~0.5, other work was running and wall-clock figures are pessimistic)."
        + ("" if not any(r.get("quiet_machine_before_each_part", {}).values()) else
           " Before each part the bench waited (at most 20 s) for a second in which the machine was under 15 % busy: "
           + "; ".join(f"{k}: {v['waited_s']} s, last second {round(v['busy_last_second'] * 100)} % busy"
                       for k, v in r["quiet_machine_before_each_part"].items() if v) + "."),
        "",
    ]
    enf = r["enforcement"]
    out += [
        f"## 1. Per-request cost of enforcement: GET {enf['page']}, verified session, gunicorn "
        f"{enf['gunicorn_workers']} workers, wrk {enf['wrk']['connections']} connections, "
        f"{enf['wrk']['rounds']} interleaved rounds x {enf['wrk']['seconds']} s, {enf['database']}",
        "",
        "| variant | req/s (median) | req/s per round | app CPU ms/request | SQL queries/request | non-200 |",
        "|---|---:|---|---:|---:|---:|",
    ]
    labels = {
        "a_this_app": "(a) this app (TwoFactorMiddleware)",
        "b_no_2fa_middleware": "(b) TwoFactorMiddleware removed",
        "c_django_otp": "(c) django-otp OTPMiddleware + otp_required",
    }
    for name, v in enf["variants"].items():
        out.append(
            f"| {labels[name]} | {v['rps_median']} | {', '.join(f'{x:.0f}' for x in v['rps_rounds'])} | "
            f"{v['cpu_ms_per_request_median']} | {v['queries_per_request']} | {v['non_200']} |"
        )
    out += [
        "",
        f"(a)/(b): throughput {enf['throughput_ratio_a_over_b']} (paired per-round median "
        f"{enf['throughput_ratio_a_over_b_paired_median']}), capacity by CPU per request "
        f"{enf['capacity_ratio_a_over_b']}; (c)/(b): throughput {enf['throughput_ratio_c_over_b']}, capacity "
        f"{enf['capacity_ratio_c_over_b']}. Extra queries: (a) {enf['extra_queries_a_minus_b']:+d}, "
        f"(c) {enf['extra_queries_c_minus_b']:+d}.",
        "",
    ]
    ins = r.get("instructions")
    if ins and ins["counted"]:
        m = ins["measures"]
        out += [
            f"Instructions per request ({ins['tool']}; {m['home_app']['requests']} requests each, in-process, "
            f"{ins['database']}; the same on a busy machine as on a quiet one): Home (a) "
            f"{m['home_app']['instructions_per_request'] / 1e6:.2f}M, (b) {m['home_no_2fa']['instructions_per_request'] / 1e6:.2f}M, "
            f"capacity (a)/(b) by instructions {ins['instruction_capacity_ratio_a_over_b']}; My Profile (a) "
            f"{m['profile_app']['instructions_per_request'] / 1e6:.2f}M; the peers' one-line page behind ClinicAuth "
            f"{m['protected_page']['instructions_per_request'] / 1e6:.2f}M; the code step's POST "
            f"{m['code_post']['instructions_per_request'] / 1e6:.2f}M.",
            "",
        ]
    code = r["code_step"]
    hashers = code["hashers"]
    out += [
        f"## 2. Code step vs full login (in-process, {code['iterations']} logins, fresh code each)",
        "",
        "| measure | median ms |",
        "|---|---:|",
        f"| code step (POST of the code: verify + session rotation) | {code['code_step_median_ms']} |",
        f"| verification alone (totp_verify) | {code['check_code_median_ms']} |",
        f"| passkey step (POST of the signed assertion: verify + session rotation) | {code['passkey_step_median_ms']} |",
        f"| password step ({code['hasher_algorithm']}) | {code['password_step_median_ms']} |",
        f"| full login (password + code) | {code['full_login_median_ms']} |",
        "",
        f"Code step / full login = {code['code_step_share_of_login']}. The code step runs "
        f"{code['code_step_sql_statements']} SQL statements ({code['code_step_commits']} commits, counting each write outside a transaction). One password check: "
        + "; ".join(
            f"{name} {h['verify_median_ms']} ms ("
            + ", ".join(f"{k}={v}" for k, v in h.items() if k not in ("algorithm", "verify_median_ms"))
            + ")"
            for name, h in hashers.items()
        )
        + ".",
        "",
        "## 3. Users pages as a verified clinic admin (in-process, median of "
        f"{r['parameters']['iterations']} requests)",
        "",
        "| database | users (clinic / total) | page | SQL queries | median ms |",
        "|---|---|---|---:|---:|",
    ]
    page_names = {
        "user_list": "user list",
        "user_list_middle_page": "user list, middle page",
        "user_list_last_page": "user list, last page",
        "user_list_by_2fa": "user list sorted by 2FA (OFFSET, no index)",
        "user_list_without_2fa": "user list filtered to no 2FA",
        "search": "search (~1 % match)",
        "search_no_match": "search, no match",
        "view": "view",
    }
    for key in ("admin_pages_sqlite", "admin_pages_postgresql"):
        part = r[key]
        for scale in part["scales"]:
            for page, label in page_names.items():
                p = scale["pages"][page]
                out.append(
                    f"| {part['database']} | {scale['clinic_users']:,} / {scale['total_users']:,} | {label} | "
                    f"{p['queries']} | {p['median_ms']} |"
                )
    out += [
        "",
        "Search with and without the pg_trgm index on User.search_text (users/migrations/0007_user_search_text.py, 0008_search_text_upper_case.py), PostgreSQL:",
        "",
        "| users (total) | search | page ms with / without | speedup | search SQL ms with / without | speedup |",
        "|---|---|---|---:|---|---:|",
    ]
    for scale in r["admin_pages_postgresql"]["scales"]:
        for name, s in scale.get("search_indexes", {}).items():
            out.append(
                f"| {scale['total_users']:,} | {page_names[name]} | {s['page_with_index_ms']} / {s['page_without_index_ms']} | "
                f"{s['page_speedup']} | {s['sql_with_index_ms']} / {s['sql_without_index_ms']} | {s['sql_speedup']} |"
            )
    seeds = [
        f"{r[k]['database']} " + ", then ".join(f"to {s['total_users']:,} users +{s['seed_seconds']} s" for s in r[k]["scales"])
        for k in ("admin_pages_sqlite", "admin_pages_postgresql")
    ]
    plans = [f for s in r["admin_pages_postgresql"]["scales"] for f in s.get("plans_of_the_two_slowest_pages", [])]
    out += ["", "Seeding: " + "; ".join(seeds) + ".", ""]
    if plans:
        out += ["Plans (EXPLAIN (ANALYZE, BUFFERS)) of the two slowest pages at the largest scale: " + ", ".join(plans) + ".", ""]

    load = r["mixed_load"]
    ml = load["load"]
    out += [
        f"## 4. Mixed load: {load['staff_sessions']} staff sessions + {load['admin_sessions']} admins, "
        f"{load['seconds']} s, gunicorn as shipped ({load['gunicorn']['workers']} {load['gunicorn']['worker_class']} workers x "
        f"{load['gunicorn']['threads']} threads), {load['database']}",
        "",
        "| window | requests | errors | throughput req/s | logins completed | p50 ms | p99 ms | page p50 / p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
        f"| whole run | {ml['requests']} | {ml['errors']} | {ml['throughput_rps']} | {ml['logins_completed']} "
        f"({ml['logins_per_s']}/s) | {ml['p50_ms']} | {ml['p99_ms']} | {ml['page_p50_ms']} / {ml['page_p99_ms']} |",
    ]
    if ml.get("steady_state"):
        st = ml["steady_state"]
        out.append(
            f"| after the first {st['after_s']:.0f} s (logins spread over {r['mixed_load']['stagger_s']:.0f} s) | "
            f"{st['requests']} | | {st['throughput_rps']} | | "
            f"{st['p50_ms']} | {st['p99_ms']} | {st['page_p50_ms']} / {st['page_p99_ms']} |"
        )
    before = r["mixed_load_before"]
    shape = load["gunicorn"]
    out += [
        "",
        f"Per request kind, before (Django's default Argon2 parameters, load average "
        f"{r['load_average_before_each_part'].get(PART_4_BEFORE)}) and after (ClinicAuth's, load average "
        f"{r['load_average_before_each_part'].get(PART_4_AFTER)}); both gunicorn.conf.py: {shape['workers']} "
        f"{shape['worker_class']} workers x {shape['threads']} threads; same load, same database. sign_in is the whole "
        "sign-in, login page to Home:",
        "",
        "| request kind | count before / after | p50 ms before / after | p99 ms before / after | "
        "p50 ms, single idle client (after) | p50 ratio load/idle (after) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    base = load["baseline_single_client"]
    for kind, v in ml["by_kind"].items():
        b = base.get(kind)
        w = before["load"]["by_kind"].get(kind, {"requests": "", "p50_ms": "", "p99_ms": ""})
        ratio_text = f"{v['p50_ms'] / b['p50_ms']:.1f}" if b and b["p50_ms"] else ""
        out.append(
            f"| {kind} | {w['requests']} / {v['requests']} | {w['p50_ms']} / {v['p50_ms']} | {w['p99_ms']} / {v['p99_ms']} | "
            f"{b['p50_ms'] if b else ''} | {ratio_text} |"
        )
    mb, ma = before.get("server_memory_after_load", {}), load.get("server_memory_after_load", {})
    out += [
        "",
        f"Errors before / after: {before['load']['errors']} / {ml['errors']}. Server memory after the load "
        f"(master and workers, {mb.get('processes')} / {ma.get('processes')} processes): RSS summed "
        f"{mb.get('rss_mb')} / {ma.get('rss_mb')} MB, PSS summed {mb.get('pss_mb')} / {ma.get('pss_mb')} MB.",
    ]
    cb, pb = load["code_brute_force"], load["password_brute_force"]
    out += [
        "",
        f"CPU during the load (share of all cores): app server {load['cpu_share_app_server']}, load generator "
        f"{load['cpu_share_load_generator']}, whole machine busy {load['cpu_share_machine_busy']}.",
        "",
        f"Brute force during the load: wrong codes {cb.get('attempts', 0)} sent, "
        f"{cb['evaluated_failures_server_side']} evaluated by the server, {cb.get('refused_throttled', 0)} refused by the "
        f"throttle, {cb.get('accepted', 0)} accepted; wrong passwords {pb.get('attempts', 0)} sent, "
        f"{pb.get('rejected_after_check', 0)} evaluated, {pb.get('refused_throttled', 0)} refused by the throttle, "
        f"{pb.get('accepted', 0)} accepted.",
        "",
        f"## 5. Audit Log CSV export ({r['audit_export']['database']}, in-process, streamed)",
        "",
        "| rows | CSV | time | rows/s | server peak RSS before → after (growth) | Python peak allocation while streaming |",
        "|---:|---:|---:|---:|---|---:|",
        "| {rows:,} | {csv_mb} MB | {export_seconds} s | {rows_per_second:,} | {peak_rss_mb_before} → {peak_rss_mb_after} MB "
        "(+{peak_rss_growth_mb} MB) | {python_peak_alloc_mb_during_export} MB |".format(**r["audit_export"]),
        "",
        *render_peers(r),
        "## Targets",
        "",
        "| part | target | value | met |",
        "|---|---|---|---|",
    ]
    for t in r["targets"]:
        out.append(f"| {t['part']} | {t['target']} | {t['value']} | {'yes' if t['met'] else '**no**'} |")
    return "\n".join(out) + "\n"


def render_peers(r: dict) -> list[str]:
    peers = r["peers"]
    v = peers["versions"]
    labels = {
        "clinicauth": "ClinicAuth (TwoFactorMiddleware, gate cached in the session)",
        "two_factor": f"django-two-factor-auth {v.get('django-two-factor-auth')} (OTPRequiredMixin + OTPMiddleware)",
        "allauth": f"django-allauth {v.get('django-allauth')} mfa, TOTP (login_required page)",
        "bare": "bare Django login_required (baseline)",
    }
    out = [
        f"## 6. Peers side by side (same run, same PostgreSQL, Argon2; one-line page at {peers['page']}; "
        f"gunicorn {peers['gunicorn_workers']} sync workers each, wrk {peers['wrk']['connections']} connections, "
        f"{peers['wrk']['rounds']} interleaved rounds x {peers['wrk']['seconds']} s; load average "
        f"{r['load_average_before_each_part'].get('6. peers: ClinicAuth, django-two-factor-auth, django-allauth mfa, bare Django')})",
        "",
        "| stack | code step median ms | code step p95 ms | logins | SQL queries / verified page | req/s (median) | "
        "ratio to bare (paired median) | app CPU ms/request |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in peers["stacks"].items():
        out.append(
            f"| {labels[name]} | {s.get('code_step_median_ms', '—')} | {s.get('code_step_p95_ms', '—')} | {s.get('logins', '—')} | "
            f"{s['queries_per_request']} | {s['rps_median']} | {s.get('throughput_ratio_to_bare_paired_median', '')} | "
            f"{s['cpu_ms_per_request_median']} |"
        )
    out += ["", "| ClinicAuth / peer | code step median | code step p95 | verified page throughput (paired) | queries per page |",
            "|---|---:|---:|---:|---|"]
    for peer, c in peers["clinicauth_over_peer"].items():
        out.append(
            f"| {labels[peer]} | {c['code_step_median_ratio']} | {c['code_step_p95_ratio']} | "
            f"{c['throughput_ratio_paired_median']} | {c['queries_per_request']} |"
        )
    if peers["failed"]:
        out += ["", "Could not run: " + "; ".join(f"{k}: {e}" for k, e in peers["failed"].items())]
    out += ["", "Code step: lower is better (a ratio below 1 means ClinicAuth is faster); throughput: higher is better.", ""]
    return out


if __name__ == "__main__":
    sys.exit(main())
