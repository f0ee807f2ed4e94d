"""Lambda `Invoke` for moto (imported by scripts/moto_server.py): a deployed
function's code runs, under a Lambda Runtime API, on this machine.

moto 5.2.5 runs a function only in Docker and otherwise answers a
FunctionError. On AWS, the function's process fetches each event from the
Runtime API and posts back its answer (lambda/latest/dg/runtimes-api.html):
`GET /2018-06-01/runtime/invocation/next` (the event, with the request id,
deadline and invoked ARN in `Lambda-Runtime-*` headers), then
`POST .../invocation/{id}/response` or `.../invocation/{id}/error`, or
`POST .../runtime/init/error` when it cannot start. This module serves that API
on a free 127.0.0.1 port for each invocation and runs:

- the code: the deployed zips are arm64 (cargo-lambda), so what runs is the
  host build of the same package, `{COUCH_FUNCTION_BUILDS}/{package}`
  (default: `target/debug` of this repository or of CARGO_TARGET_DIR, as
  `cargo build --bin image-worker --bin image-http` leaves them); the package by the function's name, as the
  provisioner names functions (`{stack}-worker` → image-worker, `{stack}-http`
  → image-http). Any other function, and moto's own delivery of a queue's
  messages through an event source mapping (which ignores
  ReportBatchItemFailures), are left to moto.
- with the environment Lambda gives (lambda/latest/dg/configuration-envvars.html
  #configuration-envvars-runtime): the invoked version's Environment.Variables,
  AWS_LAMBDA_FUNCTION_NAME / _VERSION / _MEMORY_SIZE, AWS_LAMBDA_LOG_GROUP_NAME /
  _STREAM_NAME, AWS_REGION, AWS_LAMBDA_RUNTIME_API; credentials `testing`, AWS
  at this emulator, Bedrock at AWS_ENDPOINT_URL_BEDROCK_RUNTIME when this
  process has it (scripts/model-standin).
- an alias with AdditionalVersionWeights picks its version by those weights,
  as Lambda routes a weighted alias (lambda/latest/dg/configuring-alias-routing.html);
  X-Amz-Executed-Version says which ran.
- one process per invocation, stopped after its answer, or at the function's
  Timeout (`Task timed out after N.00 seconds`); an error or a process that
  exits first is answered with X-Amz-Function-Error: Unhandled and the
  function's error body (or Runtime.ExitError), as Lambda does.
- its output lines go to the function's log group (if it exists), in a stream
  named like Lambda's (`YYYY/MM/DD/[version]id`), so `provisioner logs` shows them.

For tests that need a broken version: `POST /moto-api/couch/lambda-environment`
`{"function": NAME, "variables": {...}}` overlays variables on every later
invocation of that function (`{}` clears them).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from moto.awslambda.models import LambdaBackend
from moto.awslambda.responses import LambdaResponse
from moto.logs.models import logs_backends
from moto.moto_api._internal import urls as moto_api_urls

_REPO = Path(__file__).resolve().parent.parent
_PACKAGES = {"-worker": "image-worker", "-http": "image-http"}
_OVERLAYS: dict[str, dict[str, str]] = {}
_OVERLAYS_LOCK = threading.Lock()
# This emulator's own address, which the functions call (never a proxy in
# front of it: on AWS a function's calls do not take the caller's path).
_EMULATOR = ["http://127.0.0.1:5000"]


def builds_dir() -> Path:
    if os.environ.get("COUCH_FUNCTION_BUILDS"):
        return Path(os.environ["COUCH_FUNCTION_BUILDS"])
    return Path(os.environ.get("CARGO_TARGET_DIR") or _REPO / "target") / "debug"


def package_of(function_name: str) -> str | None:
    for suffix, package in _PACKAGES.items():
        if function_name.endswith(suffix):
            return package
    return None


class _Invocation:
    """One event handed to one process, and what it answered."""

    def __init__(self, event: bytes, request_id: str, arn: str, timeout: float):
        self.event = event
        self.request_id = request_id
        self.arn = arn
        self.deadline_ms = int((time.time() + timeout) * 1000)
        self.handed_out = False
        self.answer: tuple[str, bytes] | None = None
        self.answered = threading.Event()
        self.stopped = threading.Event()


def _runtime_api(inv: _Invocation) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def _reply(self, status: int, body: bytes = b"{}", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if not self.path.endswith("/runtime/invocation/next"):
                return self._reply(404)
            if inv.handed_out:
                # The next event never comes: as Lambda freezes the environment,
                # this poll is held until the process has been stopped.
                inv.stopped.wait(timeout=900)
                self.close_connection = True
                return None
            inv.handed_out = True
            self._reply(
                200,
                inv.event,
                {
                    "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": inv.arn,
                    "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}",
                },
            )

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.endswith(f"/invocation/{inv.request_id}/response"):
                kind = "response"
            elif self.path.endswith(f"/invocation/{inv.request_id}/error"):
                kind = "error"
            elif self.path.endswith("/runtime/init/error"):
                kind = "init"
            else:
                return self._reply(404)
            if inv.answer is None:
                inv.answer = (kind, body)
                inv.answered.set()
            self._reply(202, b'{"status": "OK"}')

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    return server


def _forward_logs(fn: Any, group: str, stream: str, lines: list[str]) -> None:
    if not lines:
        return
    try:
        backend = logs_backends[fn.account_id][fn.region]
        if group not in backend.groups:
            return
        backend.ensure_log_stream(group, stream)
        now = int(time.time() * 1000)
        backend.put_log_events(group, stream, [{"timestamp": now, "message": line} for line in lines])
    except Exception:  # noqa: BLE001 - logs are a courtesy; the answer matters
        pass


def _error(kind: str, message: str) -> bytes:
    return json.dumps({"errorType": kind, "errorMessage": message}).encode()


def run(fn: Any, event: bytes, emulator: str) -> tuple[bytes, bool]:
    """Runs `fn` (a moto LambdaFunction version) on `event`: (payload, function error?)."""
    package = package_of(fn.function_name)
    binary = builds_dir() / str(package)
    request_id = str(uuid.uuid4())
    if not binary.is_file():
        return (
            _error(
                "Runtime.InvalidEntrypoint",
                f"no host build of {package} at {binary}: run `cargo build --bin {package}` "
                "(or set COUCH_FUNCTION_BUILDS)",
            ),
            True,
        )
    timeout = float(fn.timeout or 3)
    arn = fn.function_arn
    inv = _Invocation(event or b"{}", request_id, arn, timeout)
    server = _runtime_api(inv)
    version = str(fn.version)
    group = (getattr(fn, "logging_config", None) or {}).get("LogGroup") or f"/aws/lambda/{fn.function_name}"
    stream = f"{datetime.now(timezone.utc):%Y/%m/%d}/[{version}]{uuid.uuid4().hex}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
        "AWS_LAMBDA_LOG_GROUP_NAME": group,
        "AWS_LAMBDA_LOG_STREAM_NAME": stream,
        "AWS_REGION": fn.region,
        "AWS_DEFAULT_REGION": fn.region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": emulator,
        **{k: str(v) for k, v in (fn.environment_vars or {}).items()},
    }
    if os.environ.get("AWS_ENDPOINT_URL_BEDROCK_RUNTIME"):
        env["AWS_ENDPOINT_URL_BEDROCK_RUNTIME"] = os.environ["AWS_ENDPOINT_URL_BEDROCK_RUNTIME"]
    with _OVERLAYS_LOCK:
        env.update(_OVERLAYS.get(fn.function_name, {}))
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(binary)], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
        inv.answered.set()  # the process exited: no answer is coming

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    inv.answered.wait(timeout=timeout)
    proc.kill()
    proc.wait()
    inv.stopped.set()
    reader.join(timeout=5)
    server.shutdown()
    server.server_close()
    elapsed = time.monotonic() - started
    lines.append(f"REPORT RequestId: {request_id}\tDuration: {elapsed * 1000:.2f} ms\tMemory Size: {fn.memory_size} MB")
    _forward_logs(fn, group, stream, lines)
    if inv.answer is None:
        if elapsed >= timeout:
            return _error("Sandbox.Timedout", f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds"), True
        return (
            _error(
                "Runtime.ExitError",
                f"RequestId: {request_id} Error: Runtime exited with error: exit status {proc.returncode}",
            ),
            True,
        )
    kind, body = inv.answer
    return body, kind != "response"


def _weighted_version(backend: Any, function_name: str, qualifier: str | None) -> str | None:
    """The version a weighted alias routes this invocation to (None: not a weighted alias)."""
    if not qualifier or qualifier.isdigit() or qualifier == "$LATEST":
        return None
    try:
        alias = backend.get_alias(qualifier, function_name)
    except Exception:  # noqa: BLE001 - not an alias: moto answers as it does
        return None
    weights = ((alias.routing_config or {}).get("AdditionalVersionWeights")) or {}
    roll = random.random()
    for version, weight in weights.items():
        if roll < float(weight):
            return str(version)
        roll -= float(weight)
    return str(alias.function_version)


_moto_invoke = LambdaBackend.invoke
_moto_invoke_response = LambdaResponse.invoke
# moto 5.2.5 reads the qualifier as `?qualifier=`; AWS's is `?Qualifier=`, which it drops.
_QUERY = threading.local()


def _invoke_response(self: Any) -> Any:
    _QUERY.qualifier = (self.querystring.get("Qualifier") or [None])[0]
    _QUERY.api = True
    try:
        return _moto_invoke_response(self)
    finally:
        _QUERY.qualifier = None
        _QUERY.api = False


def _invoke(
    self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
) -> Any:
    if not getattr(_QUERY, "api", False):
        # moto's own event source mapping delivery: left as moto does it (it
        # ignores ReportBatchItemFailures; `provisioner local` plays the mapping).
        return _moto_invoke(self, function_name, qualifier, body, headers, response_headers)
    qualifier = qualifier or getattr(_QUERY, "qualifier", None)
    name = function_name.split(":")[6] if function_name.startswith("arn:") else function_name.split(":")[0]
    if ":" in function_name and not function_name.startswith("arn:"):
        qualifier = function_name.split(":", 1)[1]
    elif function_name.startswith("arn:") and len(function_name.split(":")) > 7:
        qualifier = function_name.split(":")[7]
    if package_of(name) is None:
        return _moto_invoke(self, function_name, qualifier, body, headers, response_headers)
    routed = _weighted_version(self, name, qualifier)
    fn = self.get_function(name, routed or qualifier)
    invocation_type = headers.get("X-Amz-Invocation-Type") or "RequestResponse"
    if invocation_type == "DryRun":
        return b""
    emulator = _EMULATOR[0]
    payload = body.encode() if isinstance(body, str) else (body or b"")
    if invocation_type == "Event":
        threading.Thread(target=run, args=(fn, payload, emulator), daemon=True).start()
        return b""
    answer, failed = run(fn, payload, emulator)
    if failed:
        response_headers["x-amz-function-error"] = "Unhandled"
    response_headers["x-amz-executed-version"] = str(fn.version)
    response_headers["Content-Length"] = str(len(answer))
    return answer


def _set_environment(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    raw = request.get_data() if hasattr(request, "get_data") else request.data
    spec = json.loads(raw or b"{}")
    name = spec.get("function")
    if not isinstance(name, str) or not isinstance(spec.get("variables", {}), dict):
        return 400, {}, json.dumps({"error": 'expected {"function": NAME, "variables": {...}}'})
    with _OVERLAYS_LOCK:
        if spec.get("variables"):
            _OVERLAYS[name] = {str(k): str(v) for k, v in spec["variables"].items()}
        else:
            _OVERLAYS.pop(name, None)
    return 201, {}, ""


def install(argv: list[str]) -> None:
    """Patches moto; `argv` are moto_server's options (its host and port)."""
    host, port = "127.0.0.1", "5000"
    for i, arg in enumerate(argv[:-1]):
        if arg in ("-H", "--host"):
            host = argv[i + 1]
        elif arg in ("-p", "--port"):
            port = argv[i + 1]
    _EMULATOR[0] = f"http://{host}:{port}"
    LambdaBackend.invoke = _invoke  # type: ignore[method-assign]
    LambdaResponse.invoke = _invoke_response  # type: ignore[method-assign]
    moto_api_urls.url_paths["{0}/moto-api/couch/lambda-environment"] = _set_environment
