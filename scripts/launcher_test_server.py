"""One scripts/moto_server.py on a free 127.0.0.1 port for a Python test
module of the launcher's own additions (test_moto_*.py): `start()` in
setUpModule, `stop()` in tearDownModule."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).resolve().parent
VENV_PYTHON = SCRIPTS.parent / ".venv" / "bin" / "python"


class Launcher:
    def __init__(self) -> None:
        self.server: subprocess.Popen[bytes] | None = None
        self.log: Any = None
        self.endpoint = ""

    def start(self) -> str:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        python = str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable
        self.log = tempfile.TemporaryFile()
        self.server = subprocess.Popen(
            [python, "moto_server.py", "-H", "127.0.0.1", "-p", str(port)],
            cwd=SCRIPTS,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return self.endpoint
            except OSError:
                if self.server.poll() is not None or time.monotonic() > deadline:
                    self.log.seek(0)
                    raise RuntimeError(
                        f"moto_server.py did not start:\n{self.log.read().decode(errors='replace')}"
                    )
                time.sleep(0.1)

    def stop(self) -> None:
        if self.server is not None:
            self.server.terminate()
            try:
                self.server.wait(10)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        if self.log is not None:
            self.log.close()
