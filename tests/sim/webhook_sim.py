#!/usr/bin/env python3
"""tests/sim/webhook_sim.py: a webhook consumer for the end-to-end tests, verifying every delivery
as the Standard Webhooks specification says and counting deliveries per webhook-id.

    webhook_sim.py --port 0 --port-file PATH [--state-file PATH] [--host 127.0.0.1] [--verbose]

Binds, writes the port it bound to PATH (a temporary file renamed over PATH, so a reader never
sees a partial file), and serves until SIGTERM or SIGINT, then exits 0 at once. With
--exit-with-parent it also exits when the process that started it dies. With --state-file it
loads the registered endpoints and every count from that file at start and saves them after
every change (PATH.tmp, then renamed over PATH): stopped and restarted on the same --port it is
really down in between (connection refused) and keeps what it counted.

Receiver side: POST /hooks/<name> (the endpoint must be registered). Control side (under /_sim):
endpoints, faults, counts, reset. tests/sim/README.md describes both.

Python's standard library only. One lock guards all state; a request holds it only while it
updates counts, never while it sleeps for an injected hang.
"""

import argparse
import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import select
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

MAX_BODY = 1 << 20
TOLERANCE_S = 5 * 60  # the specification's replay window, either side of now
SECRET_PREFIX = "whsec_"
HOOK_PATH = re.compile(r"/hooks/([A-Za-z0-9_.~-]+)\Z")
NAME = re.compile(r"[A-Za-z0-9_.~-]+\Z")
FAULT_KEYS = {"endpoint", "status", "retryAfter", "times", "hangMs", "reset"}


def dumps(obj):
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def secret_key(secret):
    """The HMAC key of a whsec_ secret (base64 after the prefix), or None if it is not one."""
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        return None
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        return None
    return key or None


def sign(secret, msg_id, timestamp, body):
    """The Standard Webhooks v1 signature (without the "v1," prefix) of one delivery."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    content = f"{msg_id}.{timestamp}.".encode("utf-8") + body
    return base64.b64encode(hmac.new(secret_key(secret), content, hashlib.sha256).digest()).decode()


def verify(keys, msg_id, timestamp, signature, body, now):
    """Checks one delivery; returns (None, parsed body, timestamp as int) or (why it fails, ...)."""
    if not msg_id or not timestamp or not signature:
        return "missing webhook-id, webhook-timestamp or webhook-signature", None, None
    if "." in msg_id:
        return "webhook-id contains a full stop", None, None
    if not timestamp.isdigit():
        return "webhook-timestamp is not integer unix seconds", None, None
    ts = int(timestamp)
    if abs(now - ts) > TOLERANCE_S:
        return "webhook-timestamp outside the 5 minute tolerance", None, ts
    content = f"{msg_id}.{timestamp}.".encode("utf-8") + body
    expected = [base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()) for key in keys]
    valid = False
    for entry in signature.split(" "):
        version, comma, value = entry.partition(",")
        if version != "v1" or not comma:
            continue  # v1a (asymmetric) and unknown versions are not ours to check
        for candidate in expected:
            # Every candidate is compared (no early exit), each in constant time.
            valid |= hmac.compare_digest(candidate, value.encode("utf-8", "replace"))
    if not valid:
        return "no valid v1 signature", None, ts
    try:
        event = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "the body is not JSON", None, ts
    if not isinstance(event, dict) or not all(key in event for key in ("type", "timestamp",
                                                                        "data")):
        return "the body lacks type, timestamp or data", None, ts
    if not isinstance(event["type"], str):
        return "type is not a string", None, ts
    return None, event, ts


def new_counts():
    return {"attempts": 0, "accepted": 0, "badSignatures": 0, "ids": {}, "arrivals": [],
            "rejections": {}}


class Fault:
    __slots__ = ("status", "retry_after", "times", "hang_ms", "reset")

    def __init__(self, status, retry_after, times, hang_ms, reset):
        self.status = status
        self.retry_after = retry_after
        self.times = times
        self.hang_ms = hang_ms
        self.reset = reset

    def describe(self):
        return {"status": self.status, "retryAfter": self.retry_after, "times": self.times,
                "hangMs": self.hang_ms, "reset": self.reset}

    @staticmethod
    def parse(obj):
        """Returns (endpoint, Fault or None to clear, None) or (None, None, what is wrong)."""
        if not isinstance(obj, dict):
            return None, None, "the body must be a JSON object"
        unknown = sorted(set(obj) - FAULT_KEYS)
        if unknown:
            return None, None, "unknown fault setting(s): " + ", ".join(unknown)
        endpoint = obj.get("endpoint")
        if not isinstance(endpoint, str) or not endpoint:
            return None, None, "endpoint (a string) is required"
        status = obj.get("status")
        retry_after = obj.get("retryAfter")
        times = obj.get("times", -1)
        hang_ms = obj.get("hangMs", 0)
        reset = obj.get("reset", False)
        if status is not None and (not is_int(status) or not 200 <= status <= 599):
            return None, None, "status must be an integer from 200 to 599"
        if retry_after is not None:
            if is_int(retry_after) and retry_after >= 0:
                retry_after = str(retry_after)
            elif not isinstance(retry_after, str) or not retry_after or "\n" in retry_after \
                    or "\r" in retry_after:
                return None, None, "retryAfter must be a non-negative integer or a string"
            if status is None:
                return None, None, "retryAfter needs a status"
        if not is_int(times) or times < -1:
            return None, None, "times must be an integer, -1 for until cleared"
        if not isinstance(hang_ms, (int, float)) or isinstance(hang_ms, bool) or hang_ms < 0:
            return None, None, "hangMs must be a non-negative number"
        if not isinstance(reset, bool):
            return None, None, "reset must be true or false"
        if status is None and not hang_ms and not reset:
            return endpoint, None, None  # {"endpoint": "a"} alone clears
        if times == 0:
            return endpoint, None, None
        return endpoint, Fault(status, retry_after, times, hang_ms, reset), None


class Sim:
    """All the receiver's state, guarded by self.lock."""

    def __init__(self, state_file):
        self.lock = threading.Lock()
        self.state_file = state_file
        self.stopping = threading.Event()
        self.endpoints = {}  # name -> list of secrets
        self.keys = {}       # name -> list of HMAC keys
        self.counts = {}     # name -> new_counts()
        self.faults = {}     # name -> Fault
        self.unregistered = 0
        if state_file and os.path.exists(state_file):
            self._load()

    # --- persistence ------------------------------------------------------------------------------

    def _load(self):
        with open(self.state_file, encoding="utf-8") as source:
            state = json.load(source)
        for name, secrets in state.get("endpoints", {}).items():
            self.endpoints[name] = list(secrets)
            self.keys[name] = [secret_key(secret) for secret in secrets]
        for name, counts in state.get("counts", {}).items():
            merged = new_counts()
            merged.update(counts)
            self.counts[name] = merged
        for name in self.endpoints:
            self.counts.setdefault(name, new_counts())
        self.unregistered = state.get("unregistered", 0)

    def _save(self):
        """Writes the state (the caller holds the lock): PATH.tmp, then renamed over PATH."""
        if not self.state_file:
            return
        temporary = self.state_file + ".tmp"
        with open(temporary, "w", encoding="utf-8") as out:
            json.dump({"endpoints": self.endpoints, "counts": self.counts,
                       "unregistered": self.unregistered}, out, separators=(",", ":"))
        os.replace(temporary, self.state_file)

    # --- control ----------------------------------------------------------------------------------

    def register(self, name, secrets):
        with self.lock:
            self.endpoints[name] = list(secrets)
            self.keys[name] = [secret_key(secret) for secret in secrets]
            self.counts.setdefault(name, new_counts())
            self._save()

    def set_fault(self, name, fault):
        with self.lock:
            if name not in self.endpoints:
                return False
            if fault is None:
                self.faults.pop(name, None)
            else:
                self.faults[name] = fault
            return True

    def reset(self):
        with self.lock:
            self.counts = {name: new_counts() for name in self.endpoints}
            self.faults = {}
            self.unregistered = 0
            self._save()

    def report(self, name):
        """The counts of one endpoint as GET /_sim/deliveries shows them (the caller locks)."""
        counts = self.counts[name]
        out = {"endpoint": name}
        out.update(json.loads(json.dumps(counts)))  # a deep copy
        fault = self.faults.get(name)
        out["fault"] = fault.describe() if fault is not None else None
        return out

    def deliveries(self, name=None):
        with self.lock:
            if name is None:
                return {"endpoints": {n: self.report(n) for n in self.endpoints},
                        "unregistered": self.unregistered}
            if name not in self.endpoints:
                return None
            return self.report(name)

    # --- deliveries -------------------------------------------------------------------------------

    def receive(self, name, headers, body):
        """Counts one delivery's arrival and verification. Returns None for an unregistered
        endpoint, else (fault or None, the rejection reason or None, msg_id)."""
        now = time.time()
        with self.lock:
            if name not in self.endpoints:
                self.unregistered += 1
                self._save()
                return None
            counts = self.counts[name]
            counts["arrivals"].append(now)
            fault = self.faults.get(name)
            if fault is not None and fault.times > 0:
                fault.times -= 1
                if fault.times == 0:
                    del self.faults[name]
            keys = [key for key in self.keys[name] if key is not None]
            msg_id = headers.get("webhook-id", "").strip()
            problem, event, ts = verify(keys, msg_id, headers.get("webhook-timestamp", "").strip(),
                                        headers.get("webhook-signature", "").strip(), body,
                                        int(now))
            if problem is not None:
                counts["badSignatures"] += 1
                counts["rejections"][problem] = counts["rejections"].get(problem, 0) + 1
            else:
                counts["attempts"] += 1
                entry = counts["ids"].get(msg_id)
                if entry is None:
                    entry = {"attempts": 0, "accepted": 0, "type": None, "orderId": None,
                             "timestamps": []}
                    counts["ids"][msg_id] = entry
                entry["attempts"] += 1
                entry["timestamps"].append(ts)
                entry["type"] = event["type"]
                data = event["data"]
                if isinstance(data, dict) and "orderId" in data:
                    entry["orderId"] = data["orderId"]
            self._save()
            return fault, problem, msg_id

    def accept(self, name, msg_id):
        """Counts a 2xx answer to a valid delivery."""
        with self.lock:
            counts = self.counts.get(name)
            if counts is None or msg_id not in counts["ids"]:
                return  # reset meanwhile
            counts["accepted"] += 1
            counts["ids"][msg_id]["accepted"] += 1
            self._save()


class Headers(dict):
    """A request's header fields by lower-case name (repeated fields joined by ", ")."""

    def get(self, name, default=None):
        return dict.get(self, name.lower(), default)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "webhook-sim/1"
    sys_version = ""
    timeout = None

    def setup(self):
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        if self.server.verbose:
            super().log_message(format, *args)

    def parse_request(self):
        """A lean BaseHTTPRequestHandler.parse_request (no email package), same contract."""
        self.command = None
        self.request_version = "HTTP/1.1"
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if len(words) != 3:
            self.send_error(400, "Bad request line")
            return False
        command, path, version = words
        if version not in ("HTTP/1.0", "HTTP/1.1"):
            self.send_error(505 if version.startswith("HTTP/") else 400, "Bad HTTP version")
            return False
        self.command, self.path, self.request_version = command, path, version
        headers = Headers()
        while True:
            line = self.rfile.readline(65537)
            if len(line) > 65536 or len(headers) >= 100:
                self.send_error(431, "Header fields too large")
                return False
            if line in (b"\r\n", b"\n", b""):
                break
            name, colon, value = line.decode("iso-8859-1").partition(":")
            name = name.strip().lower()
            if not colon or not name or name != name.split()[0]:
                self.send_error(400, "Bad header field")
                return False
            value = value.strip()
            headers[name] = headers[name] + ", " + value if name in headers else value
        self.headers = headers
        tokens = {token.strip() for token in headers.get("connection", "").lower().split(",")}
        self.close_connection = "close" in tokens if version == "HTTP/1.1" else \
            "keep-alive" not in tokens
        if (version == "HTTP/1.1" and headers.get("expect", "").lower() == "100-continue"
                and not self.handle_expect_100()):
            return False
        return True

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")

    # --- framing ----------------------------------------------------------------------------------

    def _send(self, status, obj, headers=()):
        body = dumps(obj)
        reason = self.responses.get(status, ("",))[0]
        lines = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/json",
                 f"Content-Length: {len(body)}"]
        lines.extend(f"{name}: {value}" for name, value in headers)
        if self.close_connection:
            lines.append("Connection: close")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        if self.server.verbose:
            self.log_request(status)

    def _read_body(self):
        """The request's body, or None after answering a framing error (and closing)."""
        encoding = self.headers.get("transfer-encoding", "").strip().lower()
        if encoding and encoding != "identity":
            if encoding != "chunked":
                return self._framing_error(501, "unsupported Transfer-Encoding")
            parts = []
            total = 0
            while True:
                try:
                    size = int(self.rfile.readline(1024).split(b";")[0].strip(), 16)
                except ValueError:
                    return self._framing_error(400, "invalid chunk size")
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                total += size
                if total > MAX_BODY:
                    return self._framing_error(413, "body too large")
                parts.append(self.rfile.read(size))
                self.rfile.readline(3)
        length = self.headers.get("content-length")
        if length is None:
            return b""
        if not length.strip().isdigit():
            return self._framing_error(400, "invalid Content-Length")
        if int(length) > MAX_BODY:
            return self._framing_error(413, "body too large")
        return self.rfile.read(int(length))

    def _framing_error(self, status, message):
        self.close_connection = True
        self._send(status, {"ok": False, "error": message})
        return None

    def _reset_connection(self):
        """Closes the connection with a TCP reset and no answer."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()  # the socket closes only when no file made from it is still open
            self.connection.close()
        except OSError:
            pass

    def _peer_gone(self):
        """True when the client closed its side (it gave up waiting during a hang)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    # --- dispatch ---------------------------------------------------------------------------------

    def _handle(self, method):
        try:
            body = self._read_body()
            if body is None:
                return
            url = urlsplit(self.path)
            if url.path.startswith("/_sim/"):
                self._control(method, url.path, url.query, body)
                return
            match = HOOK_PATH.match(url.path)
            if match and method == "POST":
                self._hook(match.group(1), body)
            elif match:
                self._send(405, {"ok": False, "error": "deliveries are POSTs"},
                           (("Allow", "POST"),))
            else:
                self._send(404, {"ok": False, "error": f"no endpoint {url.path}"})
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception:  # a receiver bug: say so, to the test and on stderr
            traceback.print_exc()
            self.close_connection = True
            try:
                self._send(500, {"ok": False, "error": "webhook_sim.py crashed: " +
                                 traceback.format_exc(limit=1).strip()})
            except OSError:
                pass

    def _hook(self, name, body):
        sim = self.server.sim
        received = sim.receive(name, self.headers, body)
        if received is None:
            self._send(404, {"ok": False, "error": f"endpoint {name} is not registered"})
            return
        fault, problem, msg_id = received
        if fault is not None and fault.hang_ms:
            if sim.stopping.wait(fault.hang_ms / 1000.0):
                self._reset_connection()
                return
            if self._peer_gone():
                self.close_connection = True
                return
        if fault is not None and fault.reset:
            self._reset_connection()
            return
        if fault is not None and fault.status is not None:
            headers = (("Retry-After", fault.retry_after),) if fault.retry_after else ()
            if 200 <= fault.status <= 299 and problem is None:
                sim.accept(name, msg_id)
            self._send(fault.status, {"ok": False, "fault": fault.status}, headers)
            return
        if problem is not None:
            self._send(400, {"ok": False, "error": problem})
            return
        sim.accept(name, msg_id)
        self._send(200, {"ok": True})

    def _control(self, method, path, query_text, body):
        sim = self.server.sim
        query = dict(parse_qsl(query_text, keep_blank_values=True)) if query_text else {}
        if path == "/_sim/health" and method == "GET":
            self._send(200, {"ok": True})
        elif path == "/_sim/endpoints" and method == "GET":
            with sim.lock:
                names = sorted(sim.endpoints)
            self._send(200, {"endpoints": names})
        elif path == "/_sim/endpoints" and method == "POST":
            obj, problem = self._json(body)
            if problem is None and (not isinstance(obj, dict) or
                                    not isinstance(obj.get("name"), str) or
                                    not NAME.match(obj["name"])):
                problem = "name must match [A-Za-z0-9_.~-]+"
            if problem is None:
                secrets = obj.get("secrets")
                if (not isinstance(secrets, list) or not secrets or
                        any(secret_key(secret) is None for secret in secrets)):
                    problem = "secrets must be a non-empty list of whsec_<base64> strings"
            if problem is not None:
                self._send(400, {"ok": False, "error": problem})
                return
            sim.register(obj["name"], obj["secrets"])
            self._send(200, {"ok": True, "url": f"/hooks/{obj['name']}"})
        elif path == "/_sim/faults" and method == "POST":
            obj, problem = self._json(body)
            if problem is None:
                name, fault, problem = Fault.parse(obj)
            if problem is not None:
                self._send(400, {"ok": False, "error": problem})
            elif not sim.set_fault(name, fault):
                self._send(404, {"ok": False, "error": f"endpoint {name} is not registered"})
            else:
                self._send(200, {"ok": True, "fault": fault.describe() if fault else None})
        elif path == "/_sim/deliveries" and method == "GET":
            name = query.get("endpoint")
            report = sim.deliveries(name)
            if report is None:
                self._send(404, {"ok": False, "error": f"endpoint {name} is not registered"})
            else:
                self._send(200, report)
        elif path == "/_sim/reset" and method == "POST":
            sim.reset()
            self._send(200, {"ok": True})
        elif path in ("/_sim/health", "/_sim/endpoints", "/_sim/faults", "/_sim/deliveries",
                      "/_sim/reset"):
            self._send(405, {"ok": False, "error": f"{method} is not allowed on {path}"})
        else:
            self._send(404, {"ok": False, "error": f"no control endpoint {path}"})

    @staticmethod
    def _json(body):
        try:
            return json.loads(body.decode("utf-8")) if body.strip() else {}, None
        except (UnicodeDecodeError, ValueError) as error:
            return None, f"invalid JSON: {error}"


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024
    allow_reuse_address = True  # a restart on the same port while old connections linger

    def __init__(self, address, sim, verbose):
        self.sim = sim
        self.verbose = verbose
        super().__init__(address, Handler)

    def server_bind(self):
        # HTTPServer.server_bind() also resolves the host's name, which can stall without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        traceback.print_exc()


def write_port_file(path, port):
    temporary = f"{path}.tmp.{os.getpid()}"
    with open(temporary, "w", encoding="ascii") as out:
        out.write(f"{port}\n")
    os.replace(temporary, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--port-file", help="where to write the bound port once listening")
    parser.add_argument("--state-file", help="endpoints and counts are loaded from and saved to "
                        "this file, so that a restart keeps them")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    parser.add_argument("--exit-with-parent", action="store_true",
                        help="exit 0 when the parent process dies")
    args = parser.parse_args(argv)

    threading.stack_size(1 << 20)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    try:
        sim = Sim(args.state_file)
    except (OSError, ValueError, AttributeError, TypeError) as error:
        print(f"webhook_sim: cannot load {args.state_file}: {error}", file=sys.stderr)
        return 2
    server = Server((args.host, args.port), sim, args.verbose)
    port = server.server_address[1]
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                               daemon=True)
    serving.start()
    if args.port_file:
        write_port_file(args.port_file, port)
    if args.verbose:
        print(f"webhook_sim: listening on {args.host}:{port}", file=sys.stderr, flush=True)

    parent = os.getppid()
    while not stop.wait(0.5):
        if args.exit_with_parent and os.getppid() != parent:
            break
    sim.stopping.set()
    sys.stderr.flush()
    with sim.lock:  # no state file half written (the rename makes it atomic anyway)
        os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
