"""Registry benchmark: skopeo push and pull through openccs against the bare registry.

In one run, with the same `docker-registry` binary and the same TLS setup:

* openccs: `openccs serve` (temporary data directory, SQLite) supervising its registry —
  token auth against openccs's token endpoint and notifications to openccs (tag index,
  pull counts) on every push and pull;
* baseline: a second `docker-registry` with no auth and no notifications.

For each size (50 MiB and 500 MiB, one random layer stored as gzip level 0 so that skopeo
sends it as it is), each repetition pushes a freshly generated image (nothing to mount or
skip) to each target in turn, then pulls it back into an OCI directory. Throughput is the
image's bytes over the wall time of the skopeo command (token requests included); the
median of the repetitions is reported. Target: openccs >= 0.9 x baseline both ways.
Unless `--no-write` is given it replaces its own section of `bench/RESULTS.md`.

Run: `.venv/bin/python bench/registry.py` (see `--help`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO))

from openccs.registry.images import random_image  # noqa: E402
from openccs.tls import issue_certificate  # noqa: E402

RESULTS_FILE = BENCH_DIR / "RESULTS.md"
SECTION_TITLE = "## Registry: skopeo push and pull through openccs vs the bare registry"
MIB = 1 << 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_https(url: str, ca: Path, timeout: float = 30) -> None:
    ctx = ssl.create_default_context(cafile=str(ca))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, verify=ctx, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def start_baseline(work: Path, tls_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    cert, key = issue_certificate(tls_dir, "bench-registry", ["localhost"], ["127.0.0.1"])
    port = free_port()
    config = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(work / "baseline-storage")},
            "delete": {"enabled": True},
            "cache": {"blobdescriptor": "inmemory"},
        },
        "http": {
            "addr": f"127.0.0.1:{port}",
            "secret": "bench",
            "tls": {"certificate": str(cert), "key": str(key)},
        },
    }
    path = work / "baseline.yml"
    path.write_text(json.dumps(config))
    log = open(work / "baseline.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(["docker-registry", "serve", str(path)], stdout=log, stderr=log)
    wait_https(f"https://127.0.0.1:{port}/v2/", tls_dir / "ca.pem")
    return proc, f"127.0.0.1:{port}"


def start_openccs(data: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    http, https = free_port(), free_port()
    log = open(data.parent / "openccs.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "openccs.cli.main", "--data-dir", str(data), "serve",
         "--http", f"127.0.0.1:{http}", "--https", f"127.0.0.1:{https}"],
        stdout=log, stderr=log, cwd=REPO,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{http}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
        if proc.poll() is not None:
            break
    else:
        proc.poll()
    if proc.returncode is not None or time.monotonic() >= deadline:
        tail = (data.parent / "openccs.log").read_text()[-3000:]
        raise RuntimeError(f"openccs did not start: {tail}")
    from openccs.client import Client

    creds = json.loads((data / "credentials.json").read_text())
    client = Client(f"http://127.0.0.1:{http}", creds["secretId"], creds["secretKey"])
    for action, params in (
        ("RegisterRepositoryAccountNew", {"password": "bench-pass1"}),
        ("CreateCCRNamespace", {"namespace": "bench"}),
    ):
        res = client.call(action, params)
        assert res["code"] == 0, res
    port = (data / "registry" / "port").read_text().strip()
    return proc, f"127.0.0.1:{port}", f"{creds['uin']}:bench-pass1"


def skopeo_timed(args: list[str]) -> float:
    started = time.perf_counter()
    r = subprocess.run(["skopeo", *args], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if r.returncode != 0:
        raise RuntimeError(f"skopeo {' '.join(args)}: {r.stderr[-1000:]}")
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="50,500", help="image sizes in MiB (default 50,500)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="openccs-bench-registry-"))
    data = work / "data"
    procs: list[subprocess.Popen[bytes]] = []
    results: dict[tuple[int, str, str], list[float]] = {}
    try:
        occ, occ_host, creds = start_openccs(data)
        procs.append(occ)
        base, base_host = start_baseline(work, data / "tls")
        procs.append(base)
        certs = work / "certs"
        certs.mkdir()
        shutil.copy(data / "tls" / "ca.pem", certs / "ca.crt")
        targets = {"openccs": (occ_host, ["--dest-creds", creds]), "baseline": (base_host, [])}
        for size in sizes:
            for rep in range(args.repeat):
                for target, (host, auth) in targets.items():
                    layout = work / f"img-{size}-{rep}-{target}"
                    built = random_image(layout, "v1", size * MIB)
                    ref = f"docker://{host}/bench/img{size}-{rep}:v1"
                    push = skopeo_timed(
                        ["copy", "--dest-cert-dir", str(certs), *auth, built.ref, ref]
                    )
                    src_auth = ["--src-creds", auth[1]] if auth else []
                    pulled = work / "pulled"
                    pull = skopeo_timed(
                        ["copy", "--src-cert-dir", str(certs), *src_auth, ref, f"oci:{pulled}:v1"]
                    )
                    mb = built.size / 1e6
                    results.setdefault((size, target, "push"), []).append(mb / push)
                    results.setdefault((size, target, "pull"), []).append(mb / pull)
                    print(
                        f"{size} MiB {target} rep {rep}: push {push:.2f} s, pull {pull:.2f} s",
                        flush=True,
                    )
                    shutil.rmtree(layout)
                    shutil.rmtree(pulled)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)

    rows = []
    verdicts = []
    for size in sizes:
        for way in ("push", "pull"):
            o = statistics.median(results[(size, "openccs", way)])
            b = statistics.median(results[(size, "baseline", way)])
            ok = o >= 0.9 * b
            verdicts.append(ok)
            rows.append(
                f"| {size} MiB | {way} | {o:,.0f} | {b:,.0f} | {o / b:.2f} |"
                f" {'PASS' if ok else 'FAIL'} |"
            )
    skopeo_version = subprocess.run(
        ["skopeo", "--version"], capture_output=True, text=True
    ).stdout.split()[-1]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
    ).stdout.strip()
    section = "\n".join(
        [
            SECTION_TITLE,
            "",
            "Written by `bench/registry.py`, which replaces this section on every run.",
            "",
            f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
            f"- openccs: working tree at {commit} (uncommitted changes included)",
            f"- machine: {os.cpu_count()} CPUs, Linux {platform.release()},"
            f" Python {platform.python_version()}, skopeo {skopeo_version}",
            f"- command: `.venv/bin/python bench/registry.py --sizes {args.sizes}"
            f" --repeat {args.repeat}`",
            "- openccs: its supervised docker-registry, TLS from openccs's CA, token auth"
            " (HTTPS realm, scrypt-checked Basic credentials), notifications to openccs;"
            " baseline: the same binary, same TLS, no auth, no notifications",
            "- each repetition: a fresh random image (one gzip-level-0 layer), pushed then"
            " pulled into an OCI directory; MB/s = image bytes / skopeo wall time; median",
            "",
            "| image | way | openccs MB/s | baseline MB/s | openccs / baseline | >= 0.9 |",
            "| --- | --- | ---: | ---: | ---: | --- |",
            *rows,
            "",
        ]
    )
    print(section)
    if not args.no_write:
        text = RESULTS_FILE.read_text() if RESULTS_FILE.exists() else "# Benchmarks\n"
        if SECTION_TITLE in text:
            start = text.index(SECTION_TITLE)
            nxt = text.find("\n## ", start + len(SECTION_TITLE))
            text = text[:start] + section + (text[nxt + 1 :] if nxt != -1 else "")
        else:
            text = text.rstrip("\n") + "\n\n" + section
        RESULTS_FILE.write_text(text)
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
