#!/usr/bin/env python3
"""Builds every target of the workspace once, then runs the test binaries in lanes.

`cargo test --workspace` runs its test binaries one after another, and most of
ours wait (on moto, injected latency, back-off, a model stand-in), so a 2-core
machine sits idle through most of them. This runs the same binaries, built by
the same `cargo test --no-run`, JOBS at a time (default 3), longest first (the
durations of the last run are kept in target/test-durations.json), each with
the working directory and the variables cargo gives a test binary. Each
binary's output is printed whole when it ends, as cargo prints it (the
`test result:` lines included), then one closing line for the run.

Each binary starts its own moto server (testkit::moto_endpoint without
COUCH_MOTO_ENDPOINT): binaries running at the same time never see each
other's emulator state (the Lambda concurrency quota, IAM enforcement).

A check that is not a test binary but mostly waits too (a browser driving a
page, a container run) joins the lanes with `--also NAME=COMMAND`: run by
bash in the repository, timed and reported like a binary.

    scripts/run-tests.py [--jobs N] [--also NAME=COMMAND]... [-- ARGS FOR EVERY TEST BINARY]

Exit status: 0 when every binary passed, 1 otherwise (each failure is named
at the end), 2 when the build failed.
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DURATIONS = REPO / "target" / "test-durations.json"
# Seconds each long binary took on a fresh clone (2026-12-04, 2 cores, 3
# lanes): the order of a first run, before target/test-durations.json exists.
SEED = {
    "provisioner::test::interruptions": 82.5,
    "provisioner::test::volume": 71.7,
    "provisioner::test::faults": 70.4,
    "provisioner::test::stack": 50.6,
    "provisioner::test::functions": 36.6,
    "provisioner::test::deploys": 35.7,
    "also::browser": 45.0,
}
RESULT = re.compile(
    r"^test result: (?:ok|FAILED)\. (\d+) passed; (\d+) failed; (\d+) ignored"
)


def build(cargo):
    """`cargo test --no-run`; the test binaries it made, as cargo reports them."""
    cmd = [cargo, "test", "--workspace", "--all-targets", "--locked", "--no-run",
           "--message-format=json-render-diagnostics"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
    binaries = []
    for line in proc.stdout:
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        if msg.get("reason") != "compiler-artifact":
            continue
        if not msg.get("profile", {}).get("test") or not msg.get("executable"):
            continue
        # Built (and so linted) with every target, run as `cargo test` runs
        # them: benchmarks are `cargo bench`'s (harness = false: their main
        # would run the benchmark itself).
        if msg["target"]["kind"] == ["bench"]:
            continue
        binaries.append(msg)
    if proc.wait() != 0:
        sys.exit(2)
    return binaries


def job_of(msg, cargo):
    manifest = Path(msg["manifest_path"])
    package = msg["package_id"]
    # package_id: "path+file:///work/main/provisioner#0.1.0" or "...#name@0.1.0"
    name_version = package.rsplit("#", 1)[-1]
    name = name_version.split("@")[0] if "@" in name_version else manifest.parent.name
    version = name_version.split("@")[-1]
    src = Path(msg["target"]["src_path"])
    try:
        src = src.relative_to(manifest.parent)
    except ValueError:
        pass
    kind = msg["target"]["kind"][0]
    label = f"unittests {src}" if kind in ("lib", "bin", "proc-macro") else str(src)
    exe = Path(msg["executable"])
    return {
        "key": f"{manifest.parent.relative_to(REPO)}::{kind}::{msg['target']['name']}",
        "label": f"{label} ({exe.relative_to(REPO)})",
        "cmd": [str(exe)],
        "cwd": str(manifest.parent),
        "env": {
            "CARGO": cargo,
            "CARGO_MANIFEST_DIR": str(manifest.parent),
            "CARGO_MANIFEST_PATH": str(manifest),
            "CARGO_PKG_NAME": name,
            "CARGO_PKG_VERSION": version,
            "CARGO_CRATE_NAME": msg["target"]["name"].replace("-", "_"),
        },
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int,
                        default=int(os.environ.get("COUCH_TEST_JOBS", "3")))
    parser.add_argument("--also", action="append", default=[], metavar="NAME=COMMAND",
                        help="a check run in a lane beside the test binaries")
    parser.add_argument("args", nargs="*", help="passed to every test binary")
    opts = parser.parse_args()
    cargo = os.environ.get("CARGO", "cargo")

    jobs = [job_of(m, cargo) for m in build(cargo)]
    jobs.append({
        "key": "doc-tests",
        "label": "doc-tests (cargo test --workspace --doc)",
        "cmd": [cargo, "test", "--workspace", "--locked", "--doc", "--"],
        "cwd": str(REPO),
        "env": {},
    })
    for also in opts.also:
        name, _, command = also.partition("=")
        jobs.append({
            "key": f"also::{name}",
            "label": f"{name} ({command})",
            "cmd": ["bash", "-c", command],
            "cwd": str(REPO),
            "env": {},
            "own_args": True,
        })
    try:
        last = json.loads(DURATIONS.read_text())
    except (OSError, ValueError):
        last = {}
    # Longest first: last run's durations, else the seed below; a binary
    # never timed counts as 20 s.
    known = {**SEED, **last}
    jobs.sort(key=lambda j: -known.get(j["key"], 20.0))

    env = dict(os.environ)
    env.pop("COUCH_MOTO_ENDPOINT", None)
    pending = list(jobs)
    lock = threading.Lock()
    durations, failed, totals = {}, [], [0, 0, 0]
    running = {}

    def lane():
        while True:
            with lock:
                if not pending:
                    return
                job = pending.pop(0)
            start = time.monotonic()
            proc = subprocess.Popen(
                job["cmd"] + ([] if job.get("own_args") else opts.args), cwd=job["cwd"], env={**env, **job["env"]},
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                start_new_session=True)
            with lock:
                running[proc.pid] = proc
            out, _ = proc.communicate()
            took = time.monotonic() - start
            with lock:
                running.pop(proc.pid, None)
                durations[job["key"]] = round(took, 1)
                print(f"     Running {job['label']}  [{took:.1f} s]", flush=True)
                sys.stdout.write(out)
                sys.stdout.flush()
                for line in out.splitlines():
                    m = RESULT.match(line.strip())
                    if m:
                        for i in range(3):
                            totals[i] += int(m.group(i + 1))
                if proc.returncode != 0:
                    failed.append(f"{job['label']} (exit {proc.returncode})")

    def stop(signum, _frame):
        with lock:
            pending.clear()
            for proc in running.values():
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        sys.exit(128 + signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    started = time.monotonic()
    lanes = [threading.Thread(target=lane, daemon=True)
             for _ in range(max(1, opts.jobs))]
    for t in lanes:
        t.start()
    for t in lanes:
        t.join()

    DURATIONS.parent.mkdir(exist_ok=True)
    DURATIONS.write_text(json.dumps({**last, **durations}, indent=1, sort_keys=True))
    wall = time.monotonic() - started
    summed = sum(durations.values())
    print(f"\n{len(jobs)} test binaries in {opts.jobs} lanes: {wall:.1f} s "
          f"(one after another: {summed:.1f} s); longest: " + ", ".join(
              f"{k.split('::')[-1]} {v:.0f} s" for k, v in
              sorted(durations.items(), key=lambda kv: -kv[1])[:5]))
    for f in failed:
        print(f"FAILED: {f}")
    print(f"tests: {totals[0]} passed, {totals[1]} failed, {totals[2]} skipped")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
