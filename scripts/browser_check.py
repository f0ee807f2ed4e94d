#!/usr/bin/env python3
"""Drives the HTTP API's page (`GET /`) in headless Chromium, as a person would.

Run by scripts/check-browser, against `provisioner local` and the model
stand-in (LOCAL_PAGE_URL), with Debian's chromium and chromedriver spoken
to over the W3C WebDriver protocol (plain HTTP and JSON: no client library).

1. Loads the page, types a prompt, presses the button, and reads the state
   the page shows until it is `done` (or 120 s pass): it must pass through
   `queued` and `generating` (the stand-in takes 6 s a picture here, the
   page asks every second) and end with the picture shown (decoded by the
   browser).
2. The picture the page shows is the PNG stored in S3 for the request id
   the page shows: the same bytes, read from the emulator.
3. A prompt the model refuses ends `failed` with the reason a user can read.
4. The page found that this API takes no credential (its probe, a POST
   with no body, answered 400: no token field, no IAM notice), and the
   browser's console has no error but that probe's 400 (a
   Content-Security-Policy that blocked the page's own script or the
   picture would be one).
5. Against a stand-in API that answers as API Gateway does in front of a
   JWT authorizer (401) or IAM authorization (403), the same page shows a
   token field and sends the token typed there as `Authorization: Bearer`,
   or says a browser cannot sign and disables the button.
6. A screenshot of each end state: target/browser/{done,failed,jwt,iam}.png.

    scripts/browser_check.py URL STACK_OUTPUTS_JSON
"""

import base64
import http.server
import json
import threading
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "target" / "browser"
# Chromium as root in a sandboxless machine with no network but loopback: the
# flags that keep it from reaching for Google's services (../shared notes).
# Debian's chromium; Google's Chrome where that is what the machine has (a
# GitHub-hosted runner), with its chromedriver ($CHROMEWEBDRIVER there).
BROWSER = shutil.which("chromium") or shutil.which("google-chrome") or "/usr/bin/chromium"
DRIVER = (shutil.which("chromedriver")
          or os.path.join(os.environ.get("CHROMEWEBDRIVER", "/usr/bin"), "chromedriver"))
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--window-size=1000,1100",
]
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


class WebDriver:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"
        self.session = None

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        url = self.base + (f"/session/{self.session}" if self.session else "") + path
        req = urllib.request.Request(url, data=data, method=method,
                                     headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.load(r)["value"]
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"webdriver {method} {path}: {e.read().decode()}") from None

    def start(self):
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": BROWSER, "args": CHROMIUM_ARGS},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}}
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def find(self, css):
        found = self.call("POST", "/element", {"using": "css selector", "value": css})
        if ELEMENT not in found:
            raise RuntimeError(f"no element {css}: {found}")
        return found[ELEMENT]

    def text(self, css):
        return self.call("GET", f"/element/{self.find(css)}/text")

    def script(self, js, *args):
        return self.call("POST", "/execute/sync", {"script": js, "args": list(args)})

    def screenshot(self, path):
        path.write_bytes(base64.b64decode(self.call("GET", "/screenshot")))
        print(f"screenshot: {path.relative_to(REPO)}")

    def console(self):
        # chromedriver's log endpoint (not W3C, but served): the page's console.
        return self.call("POST", "/se/log", {"type": "browser"})


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def ask(wd, page, prompt, until, timeout=120):
    """Types `prompt`, presses the button; the states shown, until one in `until`."""
    wd.call("POST", "/url", {"url": page})
    box = wd.find("#prompt")
    wd.call("POST", f"/element/{box}/value", {"text": prompt})
    wd.call("POST", f"/element/{wd.find('#go')}/click", {})
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state, detail = wd.script(
            "return [document.getElementById('state').dataset.state,"
            " document.getElementById('detail').textContent];")
        if not seen or seen[-1] != state:
            seen.append(state)
            print(f"  state: {state} {detail}")
        if state in until:
            return seen
        time.sleep(0.2)
    raise SystemExit(f"the page never reached {until} in {timeout} s; it showed {seen}")


class Door(http.server.BaseHTTPRequestHandler):
    """The page as the real API serves it; API Gateway's refusal for the rest."""
    page = (b"", {})
    refusal = 401
    seen = []

    def do_GET(self):
        body, headers = Door.page
        self.send_response(200)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        Door.seen.append(self.headers.get("authorization"))
        self.rfile.read(int(self.headers.get("content-length") or 0))
        message = b'{"message":"Unauthorized"}' if Door.refusal == 401 else b'{"message":"Forbidden"}'
        self.send_response(Door.refusal)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(message)))
        self.end_headers()
        self.wfile.write(message)

    def log_message(self, *_):
        pass


def doors(wd, page):
    """The page in front of a JWT authorizer, then IAM authorization."""
    with urllib.request.urlopen(page, timeout=30) as r:
        Door.page = (r.read(), {k: v for k, v in r.headers.items()
                                if k.lower() in ("content-type", "content-security-policy")})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Door)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        Door.refusal = 401
        wd.call("POST", "/url", {"url": url})
        wait_for(wd, "return document.body.dataset.auth;", "jwt")
        if wd.script("return document.getElementById('token-field').hidden;"):
            raise SystemExit("a JWT API: the page shows no token field")
        token = wd.find("#token")
        wd.call("POST", f"/element/{token}/value", {"text": "header.payload.signature"})
        wd.call("POST", f"/element/{wd.find('#prompt')}/value", {"text": "a cat"})
        wd.call("POST", f"/element/{wd.find('#go')}/click", {})
        wait_for(wd, "return document.getElementById('state').dataset.state;", "failed")
        if Door.seen[-1] != "Bearer header.payload.signature":
            raise SystemExit(f"the token went out as {Door.seen[-1]!r}")
        print("  jwt: a token field; the token goes out as Authorization: Bearer")
        wd.screenshot(OUT / "jwt.png")
        Door.refusal = 403
        wd.call("POST", "/url", {"url": url})
        wait_for(wd, "return document.body.dataset.auth;", "iam")
        shown = wd.script("return [document.getElementById('iam').hidden,"
                          " document.getElementById('go').disabled];")
        if shown != [False, True]:
            raise SystemExit(f"an IAM API: the page should explain and disable the button: {shown}")
        print("  iam: the page says a browser cannot sign, and the button is off")
        wd.screenshot(OUT / "iam.png")
    finally:
        server.shutdown()


def wait_for(wd, js, want, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = wd.script(js)
        if got == want:
            return
        time.sleep(0.1)
    raise SystemExit(f"{js!r} never gave {want!r} (last: {got!r})")


def main():
    page, outputs_path = sys.argv[1], sys.argv[2]
    outputs = json.loads(Path(outputs_path).read_text())
    OUT.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = open(OUT / "chromedriver.log", "w")
    driver = subprocess.Popen([DRIVER, f"--port={port}"], stdout=log, stderr=log)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        wd = WebDriver(port)
        wd.start()
        try:
            run(wd, page, outputs)
        finally:
            wd.call("DELETE", "")
    finally:
        driver.terminate()
        driver.wait(10)


def run(wd, page, outputs):
    print(f"page: {page}")
    seen = ask(wd, page, "me on top of a pyramid", {"done", "failed"})
    if seen[-1] != "done" or "queued" not in seen or "generating" not in seen:
        raise SystemExit(f"expected queued, generating, done; the page showed {seen}: {wd.text('#detail')}")
    request_id = wd.text("#id")
    # The browser fetches and decodes the picture after the state says done.
    wait_for(wd, "const i = document.getElementById('picture');"
                 " return i.complete && i.naturalWidth > 0;", True, timeout=30)
    shown = wd.script(
        "const i = document.getElementById('picture');"
        "return {src: i.src, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight,"
        " visible: !document.getElementById('result').hidden};")
    if not (shown["complete"] and shown["width"] > 0 and shown["visible"]):
        raise SystemExit(f"the picture is not shown: {shown}")
    print(f"  picture: {shown['width']}x{shown['height']} for request {request_id}")
    wd.screenshot(OUT / "done.png")

    # The picture shown is the one stored for that request.
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="eu-west-1",
                      aws_access_key_id="local", aws_secret_access_key="local")
    prefix = outputs["images_prefix"].strip("/")
    key = f"{prefix}/images/{request_id}.png"
    stored = s3.get_object(Bucket=outputs["images_bucket"], Key=key)["Body"].read()
    with urllib.request.urlopen(shown["src"], timeout=30) as r:
        served = r.read()
    if not stored.startswith(b"\x89PNG\r\n\x1a\n"):
        raise SystemExit(f"s3://{outputs['images_bucket']}/{key} is not a PNG")
    if served != stored:
        raise SystemExit(f"the page shows {len(served)} bytes, S3 holds {len(stored)} different ones")
    print(f"  the page shows s3://{outputs['images_bucket']}/{key} ({len(stored)} bytes, PNG)")

    seen = ask(wd, page, "FILTER a forbidden thing", {"done", "failed"})
    detail = wd.text("#detail")
    if seen[-1] != "failed" or "content filter" not in detail:
        raise SystemExit(f"a refused prompt should end failed with its reason: {seen} {detail}")
    wd.screenshot(OUT / "failed.png")

    auth = wd.script("return [document.body.dataset.probe, document.body.dataset.auth,"
                     " document.getElementById('token-field').hidden,"
                     " document.getElementById('iam').hidden];")
    if auth != ["400", "none", True, True]:
        raise SystemExit(f"the page misread the API's authorization: {auth}")
    probe = re.compile(r"^\S+/images - Failed to load resource: the server responded with a status of 400")
    errors = [e for e in wd.console()
              if e.get("level") == "SEVERE" and not probe.match(e.get("message", ""))]
    if errors:
        raise SystemExit(f"the browser's console has errors: {errors}")
    doors(wd, page)
    print("browser: the page made a picture, showed the stored PNG, showed a refusal's reason,"
          " and asks for what a JWT or an IAM API needs")


if __name__ == "__main__":
    main()
