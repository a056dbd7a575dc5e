#!/usr/bin/env python3
"""tests/sim/webhook_sim_selftest.py: checks webhook_sim.py from the outside, as the tests use it.

    python3 tests/sim/webhook_sim_selftest.py [-v] [TestName...]

Starts the receiver as a child process on port 0 (the --port-file protocol the C++ tests use,
with a --state-file), resets it before every test, and talks to it over loopback with
http.client. Python's standard library only; runs in a few seconds.
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SIM = os.path.join(HERE, "webhook_sim.py")
sys.path.insert(0, HERE)
import webhook_sim  # noqa: E402 (after the path it lives in)

# The test vector of the standard-webhooks libraries.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_PAYLOAD = '{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

SECRET = "whsec_" + base64.b64encode(b"selftest-secret-0123456789abcdef").decode()
OTHER = "whsec_" + base64.b64encode(b"another-secret-0123456789abcdefg").decode()


def start_sim(directory, port=0):
    """Starts a receiver; returns (process, port)."""
    port_file = os.path.join(directory, "port")
    if os.path.exists(port_file):
        os.unlink(port_file)
    process = subprocess.Popen(
        [sys.executable, SIM, "--port", str(port), "--port-file", port_file, "--state-file",
         os.path.join(directory, "state.json"), "--exit-with-parent"])
    deadline = time.monotonic() + 20
    while not os.path.exists(port_file):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("webhook_sim.py did not write its port file")
        time.sleep(0.02)
    with open(port_file, encoding="ascii") as source:
        return process, int(source.read())


def stop_sim(process):
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()


def signature(secret, msg_id, ts, body):
    key = base64.b64decode(secret[len("whsec_"):])
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body.encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def event(order_id="o-1", event_type="order.confirmed"):
    return json.dumps({"type": event_type, "timestamp": "2026-01-01T00:00:00Z",
                       "data": {"orderId": order_id, "amount": "5.25"}}, separators=(",", ":"))


class Answer:
    def __init__(self, response):
        self.status = response.status
        self.headers = {name.lower(): value for name, value in response.getheaders()}
        self.raw = response.read()

    def json(self):
        return json.loads(self.raw)


class Client:
    def __init__(self, port, timeout=10.0):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def close(self):
        self.connection.close()

    def request(self, method, path, body=None, headers=None):
        self.connection.request(method, path, body=body, headers=headers or {})
        return Answer(self.connection.getresponse())

    def control(self, path, obj=None):
        if obj is None:
            return self.request("GET", path)
        return self.request("POST", path, json.dumps(obj), {"Content-Type": "application/json"})

    def deliver(self, endpoint, msg_id, body=None, secrets=(SECRET,), ts=None, sig=None):
        body = event() if body is None else body
        ts = int(time.time()) if ts is None else ts
        if sig is None:
            sig = " ".join(signature(secret, msg_id, ts, body) for secret in secrets)
        return self.request("POST", "/hooks/" + endpoint, body,
                            {"Content-Type": "application/json", "webhook-id": msg_id,
                             "webhook-timestamp": str(ts), "webhook-signature": sig})

    def counts(self, endpoint):
        answer = self.control("/_sim/deliveries?endpoint=" + endpoint)
        assert answer.status == 200, answer.raw
        return answer.json()


class VectorTest(unittest.TestCase):
    def test_known_vector(self):
        self.assertEqual("v1," + webhook_sim.sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TS,
                                                  VECTOR_PAYLOAD), VECTOR_SIGNATURE)
        self.assertEqual(signature(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_PAYLOAD),
                         VECTOR_SIGNATURE)

    def test_verify_vector(self):
        key = webhook_sim.secret_key(VECTOR_SECRET)
        body = VECTOR_PAYLOAD.encode()
        problem, _, _ = webhook_sim.verify([key], VECTOR_ID, str(VECTOR_TS), VECTOR_SIGNATURE,
                                           body, VECTOR_TS + 10)
        # The vector's payload is not an event (no type, timestamp, data): the signature passes,
        # the body check is what refuses it.
        self.assertEqual(problem, "the body lacks type, timestamp or data")
        problem, _, _ = webhook_sim.verify([key], VECTOR_ID, str(VECTOR_TS), VECTOR_SIGNATURE,
                                           body, VECTOR_TS + 301)
        self.assertEqual(problem, "webhook-timestamp outside the 5 minute tolerance")
        problem, _, _ = webhook_sim.verify([key], VECTOR_ID, str(VECTOR_TS),
                                           VECTOR_SIGNATURE[:-2] + "A=", body, VECTOR_TS)
        self.assertEqual(problem, "no valid v1 signature")


class ReceiverTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.directory = tempfile.TemporaryDirectory(prefix="webhook_sim_")
        cls.process, cls.port = start_sim(cls.directory.name)

    @classmethod
    def tearDownClass(cls):
        try:
            code = stop_sim(cls.process)
        finally:
            cls.directory.cleanup()
        assert code == 0, f"webhook_sim.py exited {code} on SIGTERM"

    def setUp(self):
        self.client = Client(self.port)
        self.assertEqual(self.client.control("/_sim/reset", {}).status, 200)
        self.assertEqual(self.client.control(
            "/_sim/endpoints", {"name": "a", "secrets": [SECRET]}).status, 200)

    def tearDown(self):
        self.client.close()

    def test_valid_delivery_is_counted(self):
        answer = self.client.deliver("a", "evt_1", event("o-7"))
        self.assertEqual(answer.status, 200)
        self.assertEqual(answer.json(), {"ok": True})
        self.assertIn("content-length", answer.headers)
        counts = self.client.counts("a")
        self.assertEqual((counts["attempts"], counts["accepted"], counts["badSignatures"]),
                         (1, 1, 0))
        entry = counts["ids"]["evt_1"]
        self.assertEqual((entry["attempts"], entry["accepted"], entry["type"], entry["orderId"]),
                         (1, 1, "order.confirmed", "o-7"))
        self.assertEqual(len(entry["timestamps"]), 1)
        self.assertEqual(len(counts["arrivals"]), 1)
        self.assertLess(abs(counts["arrivals"][0] - time.time()), 5)

    def test_counts_per_id_across_retries(self):
        for _ in range(3):
            self.assertEqual(self.client.deliver("a", "evt_1").status, 200)
        self.assertEqual(self.client.deliver("a", "evt_2", event("o-2", "order.cancelled")).status,
                         200)
        counts = self.client.counts("a")
        self.assertEqual(counts["attempts"], 4)
        self.assertEqual(counts["ids"]["evt_1"]["accepted"], 3)
        self.assertEqual(counts["ids"]["evt_2"]["type"], "order.cancelled")
        everything = self.client.control("/_sim/deliveries").json()
        self.assertEqual(everything["endpoints"]["a"]["attempts"], 4)

    def test_invalid_signatures_are_refused(self):
        ts = int(time.time())
        body = event()
        cases = [
            ("wrong secret", {"secrets": (OTHER,)}),
            ("tampered", {"sig": signature(SECRET, "evt_x", ts, body + " ")}),
            ("other id", {"sig": signature(SECRET, "evt_y", ts, body)}),
            ("no v1", {"sig": signature(SECRET, "evt_x", ts, body).replace("v1,", "v2,")}),
            ("expired", {"ts": ts - 301}),
            ("future", {"ts": ts + 301}),
            ("empty", {"sig": ""}),
        ]
        for label, kwargs in cases:
            with self.subTest(label):
                kwargs.setdefault("ts", ts)
                answer = self.client.deliver("a", "evt_x", body, **kwargs)
                self.assertEqual(answer.status, 400, answer.raw)
        answer = self.client.deliver("a", "evt_x", ts=ts - 299)  # inside the tolerance
        self.assertEqual(answer.status, 200)
        counts = self.client.counts("a")
        self.assertEqual(counts["badSignatures"], len(cases))
        self.assertEqual(counts["ids"]["evt_x"]["attempts"], 1)
        self.assertEqual(len(counts["arrivals"]), len(cases) + 1)

    def test_body_must_be_an_event(self):
        answer = self.client.deliver("a", "evt_b", '{"type":"x","data":{}}')
        self.assertEqual(answer.status, 400)
        self.assertEqual(self.client.counts("a")["badSignatures"], 1)

    def test_rotated_secret(self):
        # After a rotation the sender signs with the new and the old secret.
        self.assertEqual(self.client.control(
            "/_sim/endpoints", {"name": "a", "secrets": [OTHER]}).status, 200)
        self.assertEqual(self.client.deliver("a", "evt_r", secrets=(SECRET, OTHER)).status, 200)
        self.assertEqual(self.client.deliver("a", "evt_r", secrets=(OTHER, SECRET)).status, 200)
        self.assertEqual(self.client.deliver("a", "evt_r", secrets=(SECRET,)).status, 400)
        # The receiver may know both secrets too.
        self.client.control("/_sim/endpoints", {"name": "a", "secrets": [SECRET, OTHER]})
        self.assertEqual(self.client.deliver("a", "evt_r", secrets=(SECRET,)).status, 200)
        counts = self.client.counts("a")
        self.assertEqual(counts["ids"]["evt_r"]["accepted"], 3)
        self.assertEqual(counts["badSignatures"], 1)

    def test_unregistered_endpoint(self):
        self.assertEqual(self.client.deliver("nobody", "evt_1").status, 404)
        self.assertEqual(self.client.control("/_sim/deliveries?endpoint=nobody").status, 404)
        self.assertEqual(self.client.control("/_sim/deliveries").json()["unregistered"], 1)
        self.assertEqual(self.client.control(
            "/_sim/faults", {"endpoint": "nobody", "status": 500}).status, 404)

    def test_bad_control_requests(self):
        for body in ({"name": "a"}, {"name": "a", "secrets": ["nope"]}, {"name": "a/b",
                                                                          "secrets": [SECRET]}):
            self.assertEqual(self.client.control("/_sim/endpoints", body).status, 400, body)
        for body in ({"status": 500}, {"endpoint": "a", "colour": 1},
                     {"endpoint": "a", "status": 99}, {"endpoint": "a", "retryAfter": "1"}):
            self.assertEqual(self.client.control("/_sim/faults", body).status, 400, body)

    def test_fault_status_times_and_retry_after(self):
        answer = self.client.control("/_sim/faults", {"endpoint": "a", "status": 503,
                                                      "retryAfter": "2", "times": 2})
        self.assertEqual(answer.status, 200, answer.raw)
        first = self.client.deliver("a", "evt_f")
        self.assertEqual((first.status, first.headers.get("retry-after")), (503, "2"))
        self.assertEqual(self.client.deliver("a", "evt_f").status, 503)
        third = self.client.deliver("a", "evt_f")
        self.assertEqual(third.status, 200)
        self.assertNotIn("retry-after", third.headers)
        counts = self.client.counts("a")
        self.assertEqual(counts["ids"]["evt_f"]["attempts"], 3)
        self.assertEqual(counts["ids"]["evt_f"]["accepted"], 1)
        self.assertEqual(counts["fault"], None)

    def test_fault_until_cleared(self):
        self.client.control("/_sim/faults", {"endpoint": "a", "status": 410})
        for _ in range(4):
            self.assertEqual(self.client.deliver("a", "evt_g").status, 410)
        self.assertEqual(self.client.counts("a")["fault"]["times"], -1)
        self.assertEqual(self.client.control("/_sim/faults", {"endpoint": "a"}).status, 200)
        self.assertEqual(self.client.deliver("a", "evt_g").status, 200)
        counts = self.client.counts("a")
        self.assertEqual((counts["attempts"], counts["accepted"]), (5, 1))

    def test_fault_reset_closes_without_answer(self):
        self.client.control("/_sim/faults", {"endpoint": "a", "reset": True, "times": 1})
        with self.assertRaises((ConnectionError, http.client.HTTPException)):
            self.client.deliver("a", "evt_c")
        self.client.close()
        self.client = Client(self.port)
        self.assertEqual(self.client.deliver("a", "evt_c").status, 200)
        entry = self.client.counts("a")["ids"]["evt_c"]
        self.assertEqual((entry["attempts"], entry["accepted"]), (2, 1))

    def test_fault_hang(self):
        self.client.control("/_sim/faults", {"endpoint": "a", "hangMs": 400, "times": 1})
        started = time.monotonic()
        self.assertEqual(self.client.deliver("a", "evt_h").status, 200)
        self.assertGreaterEqual(time.monotonic() - started, 0.4)
        # A client that gives up during the hang: an attempt, not accepted.
        self.client.control("/_sim/faults", {"endpoint": "a", "hangMs": 600, "times": 1})
        impatient = Client(self.port, timeout=0.2)
        with self.assertRaises((TimeoutError, socket.timeout)):
            impatient.deliver("a", "evt_i")
        impatient.close()
        time.sleep(0.6)
        counts = self.client.counts("a")
        self.assertEqual(counts["ids"]["evt_h"]["accepted"], 1)
        self.assertEqual((counts["ids"]["evt_i"]["attempts"], counts["ids"]["evt_i"]["accepted"]),
                         (1, 0))

    def test_keep_alive(self):
        for i in range(5):
            self.assertEqual(self.client.deliver("a", f"evt_k{i}").status, 200)
        self.assertEqual(len(self.client.counts("a")["ids"]), 5)

    def test_reset_keeps_endpoints(self):
        self.client.deliver("a", "evt_1")
        self.client.control("/_sim/faults", {"endpoint": "a", "status": 500})
        self.assertEqual(self.client.control("/_sim/reset", {}).status, 200)
        counts = self.client.counts("a")
        self.assertEqual((counts["attempts"], counts["ids"], counts["fault"]), (0, {}, None))
        self.assertEqual(self.client.deliver("a", "evt_1").status, 200)


class RestartTest(unittest.TestCase):
    def test_state_survives_a_restart_on_the_same_port(self):
        with tempfile.TemporaryDirectory(prefix="webhook_sim_") as directory:
            process, port = start_sim(directory)
            try:
                client = Client(port)
                client.control("/_sim/endpoints", {"name": "b", "secrets": [SECRET]})
                self.assertEqual(client.deliver("b", "evt_1", event("o-1")).status, 200)
                self.assertEqual(client.deliver("b", "evt_1", secrets=(OTHER,)).status, 400)
                client.close()
            finally:
                self.assertEqual(stop_sim(process), 0)
            with self.assertRaises(ConnectionRefusedError):  # really down
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
            process, again = start_sim(directory, port)
            try:
                self.assertEqual(again, port)
                client = Client(port)
                self.assertEqual(client.deliver("b", "evt_1").status, 200)
                counts = client.counts("b")
                self.assertEqual(counts["ids"]["evt_1"]["attempts"], 2)
                self.assertEqual(counts["ids"]["evt_1"]["orderId"], "o-1")
                self.assertEqual((counts["accepted"], counts["badSignatures"]), (2, 1))
                self.assertEqual(len(counts["arrivals"]), 3)
                client.close()
            finally:
                self.assertEqual(stop_sim(process), 0)


if __name__ == "__main__":
    unittest.main()
