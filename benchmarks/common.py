"""Shared benchmark plumbing: locating ../shared, starting a server subprocess, tables and JSON."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SPEECHIQ_SHARED", ROOT.parent / "shared"))
CALLS = SHARED / "calls"
RESULTS = ROOT / "benchmarks" / "results"


def require_shared(what: Path = CALLS) -> bool:
    if not what.exists():
        print(f"skipped: {what} not found (set SPEECHIQ_SHARED to the shared material)")
        return False
    return True


def english_calls() -> list[Path]:
    return sorted(p for p in CALLS.glob("*.wav") if json.loads(p.with_suffix(".json").read_text())["language"] == "en")


def all_calls() -> list[Path]:
    return sorted(CALLS.glob("*.wav"))


def truth(wav: Path) -> dict[str, Any]:
    return json.loads(wav.with_suffix(".json").read_text(encoding="utf-8"))


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[f"{c:.3f}" if isinstance(c, float) else str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(header)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def write_json(name: str, data: dict[str, Any], path: str | None = None) -> Path:
    out = Path(path) if path else RESULTS / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": name, "machine": machine(), **data}, indent=2, ensure_ascii=False))
    print(f"\nwrote {out}")
    return out


class ServerProcess:
    """``speechiq serve`` in a subprocess on a free port (so client load is not in its process).

    Its output is drained by a thread into ``tail`` (the last 200 lines): an unread pipe fills
    up after 64 KiB of log lines and then blocks the server's logging, and with it the server.
    """

    def __init__(self, env: dict[str, str] | None = None, args: Sequence[str] = ()) -> None:
        # the store stays on (the production path) but writes to a temporary file, not the checkout
        store = f"sqlite:///{tempfile.mkdtemp(prefix='speechiq-bench-')}/store.db"
        self.env = {**os.environ, "SPEECHIQ_STORE__URL": store, **(env or {})}
        self.args = list(args)
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.tail: deque[str] = deque(maxlen=200)

    def __enter__(self) -> ServerProcess:
        cmd = [sys.executable, "-m", "speechiq.cli", "serve", "--port", "0", *self.args]
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, cwd=ROOT)
        assert self.proc.stdout is not None
        deadline = time.time() + 300
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"server exited: {self.proc.poll()}")
            self.tail.append(line)
            m = re.search(r"ws://[\d.]+:(\d+)/", line)
            if m:
                self.port = int(m.group(1))
                threading.Thread(target=self.tail.extend, args=(self.proc.stdout,), daemon=True).start()
                return self
        raise RuntimeError("server did not start")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def url(self, path: str = "/v1/calls") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def rss_mb(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the server process has used so far."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
