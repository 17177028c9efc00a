"""Shared parts of the benchmarks: the machine's own limits, a production-like server, load, the table.

Every figure is reported beside a reference measured on the same machine in the same run (raw
COPY, a bare GROUP BY, a bare Django JSON view), because absolute numbers drift between machines.
Load comes from wrk (Debian's package) in a separate process; the app is served by gunicorn with
production settings, as the Procfile runs it.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import psutil

BASE_DIR = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Row:
    """One line of the table: a figure, the same-run reference it is compared with, and the target."""

    scenario: str
    figure: str
    value: float | None  # None: not measured in this run (the notes say why)
    unit: str
    reference: str = ""
    reference_value: float | None = None
    target: str = ""
    met: bool | None = None
    notes: str = ""

    @property
    def ratio(self) -> float | None:
        if self.reference_value in (None, 0) or self.value is None:
            return None
        return self.value / self.reference_value


@dataclass
class Report:
    size: str
    rows: list[Row] = field(default_factory=list)
    started_at: str = field(default_factory=lambda: datetime.now().astimezone().isoformat(timespec="seconds"))

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        print(format_row(row), flush=True)
        return row

    def table(self) -> str:
        header = ("scenario", "figure", "value", "reference (same run)", "ratio", "target", "met")
        lines = [header]
        for row in self.rows:
            reference = (
                f"{row.reference}: {_number(row.reference_value)}"
                if row.reference_value is not None
                else row.reference
            )
            ratio = f"{row.ratio:.2f}×" if row.ratio is not None else ""
            met = "" if row.met is None else ("yes" if row.met else "NO")
            lines.append(
                (
                    row.scenario,
                    row.figure,
                    f"{_number(row.value)} {row.unit}" if row.value is not None else "not measured",
                    reference,
                    ratio,
                    row.target,
                    met,
                )
            )
        widths = [max(len(str(line[column])) for line in lines) for column in range(len(header))]
        rendered = []
        for index, line in enumerate(lines):
            rendered.append(
                "| " + " | ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(line)) + " |"
            )
            if index == 0:
                rendered.append("|" + "|".join("-" * (width + 2) for width in widths) + "|")
        return "\n".join(rendered)

    def save(self) -> Path:
        RESULTS_DIR.mkdir(exist_ok=True)
        path = RESULTS_DIR / f"{datetime.now().astimezone().date().isoformat()}-{self.size}.json"
        payload = {
            "size": self.size,
            "started_at": self.started_at,
            "machine": machine_description(),
            "rows": [{**asdict(row), "ratio": row.ratio} for row in self.rows],
        }
        path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
        return path


def _number(value: float | None) -> str:
    if value is None:
        return ""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def format_row(row: Row) -> str:
    if row.value is None:
        return f"  {row.scenario}: {row.figure}: not measured ({row.notes})"
    ratio = f" ({row.ratio:.2f}× {row.reference})" if row.ratio is not None else ""
    return f"  {row.scenario}: {row.figure} = {_number(row.value)} {row.unit}{ratio} target {row.target}"


def machine_description() -> dict:
    cpu_model = ""
    with contextlib.suppress(OSError):
        match = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        cpu_model = match.group(1) if match else ""
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_environment(database_url: str, redis_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": "benchmark-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CONN_MAX_AGE": "600",
        "SECURE_HSTS_SECONDS": "0",
    }


@contextlib.contextmanager
def gunicorn_server(environment: dict[str, str], *, workers: int = 4) -> Iterator[str]:
    """Serves the app with gunicorn and production settings on a free loopback port."""
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="bench-gunicorn-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "config.wsgi:application",
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "--timeout",
            "120",
        ],
        cwd=BASE_DIR,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            break
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {Path(log.name).read_text()[-2000:]}")
        time.sleep(0.1)
    try:
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass
class LoadResult:
    requests: int
    seconds: float
    requests_per_second: float
    latency_p50_ms: float
    latency_p99_ms: float
    non_2xx: int


_WRK_REPORT = """
done = function(summary, latency, requests)
  io.write(string.format(
    "BENCH_JSON {\\"requests\\": %d, \\"seconds\\": %f, \\"p50\\": %f, \\"p99\\": %f, \\"non2xx\\": %d}\\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status))
end
"""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def wrk(
    url: str,
    *,
    seconds: int = 10,
    connections: int = 16,
    threads: int = 1,
    headers: dict[str, str] | None = None,
    script: str = "",
) -> LoadResult:
    """Load from wrk in its own process: requests/s, p50/p99 latency, non-2xx count."""
    if not wrk_available():
        raise RuntimeError("wrk is not installed: apt-get install wrk (make bench installs it when it can)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script + "\n" + _WRK_REPORT)
    command = [
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{seconds}s",
        "-s",
        lua.name,
        "--latency",
    ]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    os.unlink(lua.name)
    match = re.search(r"BENCH_JSON (\{.*\})", output)
    if not match:
        raise RuntimeError(f"wrk gave no summary:\n{output}")
    summary = json.loads(match.group(1))
    return LoadResult(
        requests=summary["requests"],
        seconds=summary["seconds"],
        requests_per_second=summary["requests"] / summary["seconds"],
        latency_p50_ms=summary["p50"],
        latency_p99_ms=summary["p99"],
        non_2xx=summary["non2xx"],
    )


@contextlib.contextmanager
def peak_memory_of(process_id: int) -> Iterator[dict]:
    """Samples the resident memory of a process (and its children) until the block ends."""
    import threading

    result = {"peak_rss_mib": 0.0}
    stop = threading.Event()

    def sample() -> None:
        process = psutil.Process(process_id)
        while not stop.is_set():
            with contextlib.suppress(psutil.Error):
                rss = process.memory_info().rss + sum(
                    child.memory_info().rss for child in process.children(recursive=True)
                )
                result["peak_rss_mib"] = max(result["peak_rss_mib"], rss / 2**20)
            stop.wait(0.05)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()
