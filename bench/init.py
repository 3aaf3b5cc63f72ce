#!/usr/bin/env python3
"""Cold start of Switchyard's Lambda bootstrap against a bare lambda_runtime binary, measured the
way Lambda bills it: from process start to the first request for work on the Runtime API.

A Runtime API stand-in listens on 127.0.0.1; each run starts one binary with
AWS_LAMBDA_RUNTIME_API pointing at it and notes:
  * init: process start -> its first GET /2018-06-01/runtime/invocation/next;
  * rss: the process's VmRSS at that moment (it is blocked waiting for the answer);
  * first invocation: the event handed over -> the function's answer (POST .../response or
    .../error). Switchyard's step (`read-pointer`) makes one Parameter Store call, answered by
    the same stand-in (AWS_ENDPOINT_URL), so it includes loading the AWS config and the client.
Runs alternate between the two binaries so that a busy machine slows both alike; medians are
printed as JSON for bench/run.

Usage: init.py SWITCHYARD_BOOTSTRAP HELLO_BOOTSTRAP [RUNS]
"""

from __future__ import annotations

import http.server
import json
import os
import statistics
import subprocess
import sys
import threading
import time

EVENT = {
    "namespace": "xy-0146-qa",
    "source_namespace": "xy-0146-dev",
    "execution": {
        "id": "arn:aws:states:eu-west-1:123456789012:execution:deploy:bench",
        "started_at": "2026-11-30T12:00:00Z",
    },
}


class Run:
    def __init__(self) -> None:
        self.pid = 0
        self.started = 0.0
        self.next_at: float | None = None
        self.rss_kib: int | None = None
        self.handed_at: float | None = None
        self.answered_at: float | None = None
        self.aws_calls = 0
        self.done = threading.Event()


current = Run()
lock = threading.Lock()


def rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def reply(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if not self.path.endswith("/runtime/invocation/next"):
            self.reply(404, b"{}")
            return
        now = time.perf_counter()
        with lock:
            run = current
            first = run.next_at is None
            if first:
                run.next_at = now
                run.rss_kib = rss_kib(run.pid)
        if not first:
            # The second ask for work: the run is over.
            run.done.set()
            time.sleep(5)
            return
        body = json.dumps(EVENT).encode()
        run.handed_at = time.perf_counter()
        self.reply(
            200,
            body,
            {
                "Content-Type": "application/json",
                "Lambda-Runtime-Aws-Request-Id": "bench-1",
                "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 60_000),
                "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:eu-west-1:123456789012:function:bench",
                "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000",
            },
        )

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if "/runtime/invocation/" in self.path:
            with lock:
                current.answered_at = time.perf_counter()
            self.reply(202, b"{}")
            return
        if "/runtime/init/error" in self.path:
            self.reply(202, b"{}")
            current.done.set()
            return
        # Parameter Store, as the step's AWS endpoint: the parameter is not there.
        with lock:
            current.aws_calls += 1
        body = json.dumps({"__type": "ParameterNotFound", "message": "bench"}).encode()
        self.reply(400, body, {"Content-Type": "application/x-amz-json-1.1"})


def one(binary: str, port: int, step: str | None) -> Run:
    global current
    run = Run()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "SWITCHYARD_PLUGIN_DIR": "/nonexistent",
        "RUST_LOG": "off",
    }
    if step:
        env["SWITCHYARD_STEP"] = step
    with lock:
        current = run
    run.started = time.perf_counter()
    process = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run.pid = process.pid
    run.done.wait(timeout=20)
    process.kill()
    process.wait()
    return run


def main(argv: list[str]) -> int:
    switchyard, hello = argv[1], argv[2]
    runs = int(argv[3]) if len(argv) > 3 else 25
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    results: dict[str, list[Run]] = {"switchyard": [], "hello": []}
    for _ in range(runs):
        results["switchyard"].append(one(switchyard, port, "read-pointer"))
        results["hello"].append(one(hello, port, None))
    out = {}
    for name, done in results.items():
        ok = [r for r in done if r.next_at is not None and r.answered_at is not None]
        if not ok:
            print(f"init.py: {name} never asked for work", file=sys.stderr)
            return 1
        out[name] = {
            "runs": len(ok),
            "init_ms": statistics.median((r.next_at - r.started) * 1000 for r in ok),
            "rss_mib": statistics.median((r.rss_kib or 0) / 1024 for r in ok),
            "first_invocation_ms": statistics.median(
                (r.answered_at - r.handed_at) * 1000 for r in ok
            ),
            "aws_calls": max(r.aws_calls for r in ok),
        }
    print(json.dumps(out))
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
