"""One scripts/moto_server.py on a free 127.0.0.1 port for a Python test
module of the launcher's own additions (test_moto_*.py): `start()` in
setUpModule, `stop()` in tearDownModule (`module_fixtures()` gives both),
and `client()` for boto3 clients of it."""

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

    def module_fixtures(self) -> tuple[Any, Any]:
        """unittest's setUpModule and tearDownModule for this launcher."""
        return (lambda: self.start(), lambda: self.stop())

    def client(self, service: str, region: str, keys: dict[str, str] | None = None) -> Any:
        """A boto3 client of the server: dummy keys unless `keys` (Credentials
        of STS, or a user's); path-style S3, one attempt (a test sees every
        answer)."""
        import boto3
        from botocore.config import Config

        keys = keys or {"AccessKeyId": "testing", "SecretAccessKey": "testing"}
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=keys["AccessKeyId"],
            aws_secret_access_key=keys["SecretAccessKey"],
            aws_session_token=keys.get("SessionToken"),
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

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
