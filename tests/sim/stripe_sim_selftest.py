#!/usr/bin/env python3
"""tests/sim/stripe_sim_selftest.py: checks stripe_sim.py from the outside, as the tests use it.

    python3 tests/sim/stripe_sim_selftest.py [-v] [TestName...]

Starts the simulator as a child process on port 0 (with the --port-file protocol the C++ tests
use), resets it before every test, and talks to it over loopback with http.client. Python's
standard library only; runs in a few seconds.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from urllib.parse import quote, urlencode

SIM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stripe_sim.py")
KEY = "sk_test_selftest"
PROCESSING_MS = 400


def start_sim(*extra):
    """Starts a simulator; returns (process, port, the port file's directory)."""
    directory = tempfile.TemporaryDirectory(prefix="stripe_sim_")
    port_file = os.path.join(directory.name, "port")
    process = subprocess.Popen(
        [sys.executable, SIM, "--port", "0", "--port-file", port_file,
         "--processing-ms", str(PROCESSING_MS), *extra])
    deadline = time.monotonic() + 20
    while not os.path.exists(port_file):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("stripe_sim.py did not write its port file")
        time.sleep(0.02)
    with open(port_file, encoding="ascii") as source:
        text = source.read()
    return process, int(text), directory, text


class Answer:
    def __init__(self, response):
        self.status = response.status
        self.headers = {name.lower(): value for name, value in response.getheaders()}
        self.raw = response.read()

    def json(self):
        return json.loads(self.raw)

    @property
    def error(self):
        return self.json()["error"]


class Client:
    """One keep-alive connection to the simulator."""

    def __init__(self, port, timeout=10.0):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def close(self):
        self.connection.close()

    def request(self, method, path, body=None, headers=None):
        self.connection.request(method, path, body=body, headers=headers or {})
        return Answer(self.connection.getresponse())

    def post(self, path, form, key=None, api_key=KEY):
        body = form if isinstance(form, str) else urlencode(form)
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   "Stripe-Version": "2024-06-20"}
        if api_key is not None:
            headers["Authorization"] = "Bearer " + api_key
        if key is not None:
            headers["Idempotency-Key"] = key
        return self.request("POST", path, body, headers)

    def get(self, path, api_key=KEY):
        headers = {"Authorization": "Bearer " + api_key} if api_key is not None else {}
        return self.request("GET", path, headers=headers)


def charge_form(order_id, amount=2550, payment_method="pm_card_visa"):
    # Encoded as the sender does: the brackets percent-encoded.
    return (f"amount={amount}&currency=usd&payment_method={payment_method}&confirm=true"
            f"&metadata%5Border_id%5D={quote(order_id)}")


def search_path(order_id, quote_char="'"):
    query = f"metadata[{quote_char}order_id{quote_char}]:{quote_char}{order_id}{quote_char}"
    return "/v1/payment_intents/search?query=" + quote(query, safe="")


class SimTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.process, cls.port, cls.directory, cls.port_text = start_sim()

    @classmethod
    def tearDownClass(cls):
        cls.process.send_signal(signal.SIGTERM)
        try:
            code = cls.process.wait(timeout=10)
        finally:
            if cls.process.poll() is None:
                cls.process.kill()
            cls.directory.cleanup()
        assert code == 0, f"stripe_sim.py exited {code} on SIGTERM"

    def setUp(self):
        self.client = Client(self.port)
        self.assertEqual(self.client.post("/_sim/reset", "", api_key=None).status, 200)

    def tearDown(self):
        self.client.close()

    # --- helpers -----------------------------------------------------------------------------

    def faults(self, **settings):
        answer = self.client.request("POST", "/_sim/faults", json.dumps(settings),
                                     {"Content-Type": "application/json"})
        self.assertEqual(answer.status, 200, answer.raw)

    def counts(self):
        return self.client.get("/_sim/counts", api_key=None).json()

    def wait_for(self, condition, seconds=10):
        deadline = time.monotonic() + seconds
        while not condition(self.counts()):
            self.assertLess(time.monotonic(), deadline, "the simulator never got there")
            time.sleep(0.01)

    def charge(self, order_id, key="default", **form):
        key = f"{order_id}:charge" if key == "default" else key
        return self.client.post("/v1/payment_intents", charge_form(order_id, **form), key)

    def refund(self, pi_id, key=None, order_id=None):
        form = {"payment_intent": pi_id}
        if order_id is not None:
            form["metadata[order_id]"] = order_id
        return self.client.post("/v1/refunds", form, key)

    # --- the protocol ------------------------------------------------------------------------

    def test_port_file_and_health(self):
        self.assertRegex(self.port_text, r"\A[0-9]+\n\Z")
        self.assertEqual(os.listdir(self.directory.name), ["port"])  # no temporary file left
        answer = self.client.get("/_sim/health", api_key=None)
        self.assertEqual((answer.status, answer.json()), (200, {"ok": True}))

    def test_keep_alive_and_content_length(self):
        for _ in range(3):
            answer = self.client.get("/_sim/health", api_key=None)
            self.assertEqual(answer.headers["content-length"], str(len(answer.raw)))
        answer = self.charge("o-ka")
        self.assertEqual(answer.headers["content-length"], str(len(answer.raw)))
        self.assertEqual(self.counts()["charges"], 1)

    def test_auth(self):
        answer = self.client.post("/v1/payment_intents", charge_form("o-auth"), "o-auth:charge",
                                  api_key="sk_live_x")
        self.assertEqual(answer.status, 401)
        self.assertEqual(answer.error["type"], "invalid_request_error")
        self.assertEqual(answer.error["code"], "api_key_invalid")
        answer = self.client.post("/v1/payment_intents", charge_form("o-auth"), "k", api_key=None)
        self.assertEqual(answer.status, 401)
        self.assertEqual(self.client.get("/v1/payment_intents/pi_x", api_key="pk_test").status,
                         401)
        counts = self.counts()
        self.assertEqual((counts["charges"], counts["payment_intents_created"]), (0, 0))
        # Not stored: the same key with a good API key executes.
        self.assertEqual(self.client.post("/v1/payment_intents", charge_form("o-auth"),
                                          "o-auth:charge").status, 200)

    def test_charge_and_replay(self):
        first = self.charge("o-1")
        self.assertEqual(first.status, 200, first.raw)
        self.assertNotIn("idempotent-replayed", first.headers)
        pi = first.json()
        self.assertRegex(pi["id"], r"\Api_[0-9a-f]{24}\Z")
        self.assertEqual((pi["object"], pi["amount"], pi["currency"], pi["status"]),
                         ("payment_intent", 2550, "usd", "succeeded"))
        self.assertEqual(pi["payment_method"], "pm_card_visa")
        self.assertEqual(pi["metadata"], {"order_id": "o-1"})
        self.assertTrue(pi["latest_charge"].startswith("ch_"))
        # The same parameters, brackets not encoded this time: the same request.
        form = "amount=2550&currency=usd&payment_method=pm_card_visa&confirm=true" \
               "&metadata[order_id]=o-1"
        again = self.client.post("/v1/payment_intents", form, "o-1:charge")
        self.assertEqual((again.status, again.raw), (200, first.raw))
        self.assertEqual(again.headers.get("idempotent-replayed"), "true")
        counts = self.counts()
        self.assertEqual((counts["charges"], counts["replays"], counts["idempotency_keys"]),
                         (1, 1, 1))
        self.assertEqual(counts["requests"]["create_payment_intent"], 2)
        self.assertEqual(counts["orders"]["o-1"]["charges"], 1)
        self.assertEqual(counts["orders"]["o-1"]["amount_charged"], 2550)
        got = self.client.get("/v1/payment_intents/" + pi["id"])
        self.assertEqual((got.status, got.json()), (200, pi))

    def test_no_key_executes_each_time(self):
        self.assertEqual(self.charge("o-nk", key=None).status, 200)
        self.assertEqual(self.charge("o-nk", key=None).status, 200)
        self.assertEqual(self.counts()["orders"]["o-nk"]["charges"], 2)

    def test_same_key_different_parameters(self):
        self.assertEqual(self.charge("o-2").status, 200)
        answer = self.charge("o-2", amount=999)
        self.assertEqual(answer.status, 400)
        self.assertEqual(answer.error["type"], "idempotency_error")
        self.assertIn("same parameters", answer.error["message"])
        # ... or another endpoint
        answer = self.client.post("/v1/refunds", {"payment_intent": "pi_x"}, "o-2:charge")
        self.assertEqual((answer.status, answer.error["type"]), (400, "idempotency_error"))
        # Not stored: the original parameters still replay the original answer.
        again = self.charge("o-2")
        self.assertEqual(again.headers.get("idempotent-replayed"), "true")
        self.assertEqual(self.counts()["charges"], 1)

    def test_same_key_in_flight_409(self):
        self.faults(latency_ms=1000)
        first = {}

        def send_first():
            client = Client(self.port)
            first["answer"] = client.post("/v1/payment_intents", charge_form("o-3"), "o-3:charge")
            client.close()

        thread = threading.Thread(target=send_first)
        thread.start()
        self.wait_for(lambda counts: counts["idempotency_keys"] == 1)  # the first claimed it
        second = Client(self.port)
        answer = second.post("/v1/payment_intents", charge_form("o-3"), "o-3:charge")
        second.close()
        thread.join()
        self.assertEqual(answer.status, 409)
        self.assertEqual(answer.error["code"], "idempotency_key_in_use")
        self.assertEqual(first["answer"].status, 200)
        self.faults()
        third = self.charge("o-3")
        self.assertEqual((third.status, third.headers.get("idempotent-replayed")), (200, "true"))
        self.assertEqual(third.raw, first["answer"].raw)
        self.assertEqual(self.counts()["charges"], 1)

    def test_latency(self):
        self.faults(latency_ms=150)
        started = time.monotonic()
        self.assertEqual(self.charge("o-lat").status, 200)
        self.assertGreaterEqual(time.monotonic() - started, 0.15)

    def test_validation_errors_are_stored(self):
        answer = self.client.post("/v1/payment_intents", "currency=usd&metadata[order_id]=o-v",
                                  "o-v:charge")
        self.assertEqual(answer.status, 400)
        self.assertEqual((answer.error["type"], answer.error["code"]),
                         ("invalid_request_error", "parameter_missing"))
        again = self.client.post("/v1/payment_intents", "currency=usd&metadata[order_id]=o-v",
                                 "o-v:charge")
        self.assertEqual((again.status, again.raw), (400, answer.raw))
        self.assertEqual(again.headers.get("idempotent-replayed"), "true")
        for form, code in (("amount=12.5&currency=usd", "parameter_invalid_integer"),
                           ("amount=-3&currency=usd", "parameter_invalid_integer"),
                           ("amount=100", "parameter_missing"),
                           ("amount=100&currency=usd&bogus=1", "parameter_unknown")):
            answer = self.client.post("/v1/payment_intents", form)
            self.assertEqual((answer.status, answer.error.get("code")), (400, code), form)
        answer = self.client.post("/v1/payment_intents", "amount=100&currency=USD")
        self.assertEqual((answer.status, answer.error["param"]), (400, "currency"))
        self.assertEqual(self.counts()["payment_intents_created"], 0)

    # --- faults ------------------------------------------------------------------------------

    def test_rate_limit_is_not_stored(self):
        self.faults(rate_limit_rate=1, retry_after_s=2)
        answer = self.charge("o-4")
        self.assertEqual(answer.status, 429)
        self.assertEqual(answer.headers.get("retry-after"), "2")
        self.assertEqual(answer.error["code"], "rate_limit")
        self.assertEqual(self.counts()["payment_intents_created"], 0)
        self.faults()
        answer = self.charge("o-4")
        self.assertEqual(answer.status, 200)
        self.assertNotIn("idempotent-replayed", answer.headers)
        self.assertEqual(self.counts()["charges"], 1)

    def test_error_before_500_is_stored(self):
        self.faults(error_rate_before=1)
        answer = self.charge("o-5")
        self.assertEqual(answer.status, 500)
        self.assertEqual(answer.error["type"], "api_error")
        self.faults()
        again = self.charge("o-5")
        self.assertEqual((again.status, again.raw), (500, answer.raw))
        self.assertEqual(again.headers.get("idempotent-replayed"), "true")
        counts = self.counts()
        self.assertEqual((counts["charges"], counts["payment_intents_created"]), (0, 0))
        search = self.client.get(search_path("o-5")).json()
        self.assertEqual(search["data"], [])

    def test_error_before_503_is_not_stored(self):
        self.faults(error_rate_before=1, error_status=503)
        answer = self.charge("o-6")
        self.assertEqual(answer.status, 503)
        self.faults()
        answer = self.charge("o-6")
        self.assertEqual(answer.status, 200)
        self.assertNotIn("idempotent-replayed", answer.headers)
        self.assertEqual(self.counts()["charges"], 1)

    def test_error_after_500_charge_exists(self):
        self.faults(error_rate_after=1)
        answer = self.charge("o-7")
        self.assertEqual(answer.status, 500)
        self.faults()
        again = self.charge("o-7")
        self.assertEqual((again.status, again.headers.get("idempotent-replayed")),
                         (500, "true"))
        self.assertEqual(self.counts()["orders"]["o-7"]["charges"], 1)
        for quote_char in ("'", '"'):
            found = self.client.get(search_path("o-7", quote_char))
            self.assertEqual(found.status, 200)
            body = found.json()
            self.assertEqual((body["object"], body["has_more"]), ("search_result", False))
            self.assertEqual([pi["status"] for pi in body["data"]], ["succeeded"])
            self.assertEqual(body["data"][0]["metadata"]["order_id"], "o-7")
        self.assertEqual(self.client.get(search_path("o-other"))
                         .json()["data"], [])
        bad = self.client.get("/v1/payment_intents/search?query=" + quote("status:'succeeded'"))
        self.assertEqual(bad.status, 400)

    def test_error_after_502_stores_the_success(self):
        self.faults(error_rate_after=1, error_status=502)
        answer = self.charge("o-8")
        self.assertEqual(answer.status, 502)
        self.faults()
        again = self.charge("o-8")
        self.assertEqual((again.status, again.headers.get("idempotent-replayed")),
                         (200, "true"))
        self.assertEqual(again.json()["status"], "succeeded")
        self.assertEqual(self.counts()["charges"], 1)

    def test_reset_after_charge(self):
        self.faults(reset_after_charge_rate=1)
        client = Client(self.port)
        with self.assertRaises((ConnectionError, http.client.HTTPException)):
            client.post("/v1/payment_intents", charge_form("o-9"), "o-9:charge")
        client.close()
        self.faults()
        again = self.charge("o-9")
        self.assertEqual((again.status, again.headers.get("idempotent-replayed")),
                         (200, "true"))
        self.assertEqual(again.json()["status"], "succeeded")
        counts = self.counts()
        self.assertEqual((counts["charges"], counts["faults"]["reset"]), (1, 1))

    def test_hang_times_out(self):
        self.faults(hang_rate=1, hang_ms=2000, only_paths=["/v1/payment_intents"])
        client = Client(self.port, timeout=0.2)
        with self.assertRaises((TimeoutError, socket.timeout)):
            client.post("/v1/payment_intents", charge_form("o-10"), "o-10:charge")
        client.close()

    def test_hang_is_dropped_by_reset(self):
        self.faults(hang_rate=1, hang_ms=500)
        hanging = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        body = charge_form("o-10").encode()
        hanging.sendall(b"POST /v1/payment_intents HTTP/1.1\r\nHost: x\r\n"
                        b"Authorization: Bearer " + KEY.encode() + b"\r\n"
                        b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.wait_for(lambda counts: counts["faults"]["hang"] == 1)
        self.client.post("/_sim/reset", "", api_key=None)
        self.assertEqual(hanging.recv(1024), b"")  # dropped: closed without an answer
        hanging.close()
        time.sleep(0.6)  # past the hang: the request must not have executed after the reset
        counts = self.counts()
        self.assertEqual((counts["payment_intents_created"], counts["charges"]), (0, 0))

    def test_search_lag(self):
        self.faults(search_lag_ms=500)
        self.assertEqual(self.charge("o-lag").status, 200)
        self.assertEqual(self.client.get(search_path("o-lag")).json()["data"], [])
        time.sleep(0.55)
        self.assertEqual(len(self.client.get(search_path("o-lag")).json()["data"]), 1)

    def test_only_paths(self):
        self.faults(error_rate_before=1, only_paths=["/v1/refunds"])
        pi = self.charge("o-11").json()
        self.assertEqual(self.client.get("/v1/payment_intents/" + pi["id"]).status, 200)
        self.assertEqual(self.refund(pi["id"], "o-11:refund").status, 500)
        self.faults(error_rate_before=1, only_paths=["/v1/payment_intents*"])
        self.assertEqual(self.client.get("/v1/payment_intents/" + pi["id"]).status, 500)
        self.faults(error_rate_before=1, only_methods=["POST"])
        self.assertEqual(self.client.get("/v1/payment_intents/" + pi["id"]).status, 200)

    def test_seeded_faults_repeat(self):
        def statuses():
            self.faults(error_rate_before=0.5, error_status=503, seed=7)
            return [self.charge("o-s", key=None).status for _ in range(20)]
        first = statuses()
        self.assertEqual(statuses(), first)
        self.assertEqual(set(first), {200, 503})

    def test_bad_fault_settings(self):
        for settings in ({"latency": 5}, {"error_rate_before": 2}, {"error_status": 404},
                         {"only_paths": "/v1/refunds"}):
            answer = self.client.request("POST", "/_sim/faults", json.dumps(settings))
            self.assertEqual(answer.status, 400, settings)
        answer = self.client.request("POST", "/_sim/faults", "{not json")
        self.assertEqual(answer.status, 400)

    # --- payment methods ---------------------------------------------------------------------

    def test_decline(self):
        answer = self.charge("o-12", payment_method="pm_card_chargeDeclined")
        self.assertEqual(answer.status, 402)
        error = answer.error
        self.assertEqual((error["type"], error["code"], error["decline_code"]),
                         ("card_error", "card_declined", "generic_decline"))
        self.assertEqual(error["message"], "Your card was declined.")
        pi = error["payment_intent"]
        self.assertEqual(pi["status"], "requires_payment_method")
        got = self.client.get("/v1/payment_intents/" + pi["id"]).json()
        self.assertEqual(got["status"], "requires_payment_method")
        again = self.charge("o-12", payment_method="pm_card_chargeDeclined")
        self.assertEqual((again.status, again.raw), (402, answer.raw))
        counts = self.counts()
        self.assertEqual((counts["charges"], counts["payment_intents_created"]), (0, 1))
        # decline_orders: declined whatever the payment method
        self.faults(decline_orders=["o-13"])
        self.assertEqual(self.charge("o-13").status, 402)
        self.assertEqual(self.charge("o-14").status, 200)

    def test_requires_action(self):
        answer = self.charge("o-15", payment_method="pm_card_authenticationRequired")
        self.assertEqual(answer.status, 200)
        self.assertEqual(answer.json()["status"], "requires_action")
        self.assertEqual(self.counts()["charges"], 0)
        refund = self.refund(answer.json()["id"])
        self.assertEqual((refund.status, refund.error["code"]), (400, "charge_not_refundable"))

    def test_processing_then_succeeded(self):
        answer = self.charge("o-16", payment_method="pm_card_processing")
        pi = answer.json()
        self.assertEqual((answer.status, pi["status"]), (200, "processing"))
        self.assertEqual(self.client.get("/v1/payment_intents/" + pi["id"]).json()["status"],
                         "processing")
        self.assertEqual(self.counts()["charges"], 0)
        time.sleep(PROCESSING_MS / 1000 + 0.05)
        self.assertEqual(self.counts()["charges"], 0)  # only a GET makes it succeed
        self.assertEqual(self.client.get("/v1/payment_intents/" + pi["id"]).json()["status"],
                         "succeeded")
        self.assertEqual(self.client.get("/v1/payment_intents/" + pi["id"]).json()["status"],
                         "succeeded")
        self.assertEqual(self.counts()["orders"]["o-16"]["charges"], 1)

    # --- refunds -----------------------------------------------------------------------------

    def test_refund(self):
        pi = self.charge("o-17").json()
        answer = self.refund(pi["id"], "o-17:refund", "o-17")
        self.assertEqual(answer.status, 200, answer.raw)
        refund = answer.json()
        self.assertRegex(refund["id"], r"\Are_[0-9a-f]{24}\Z")
        self.assertEqual((refund["object"], refund["amount"], refund["payment_intent"],
                          refund["status"], refund["metadata"]),
                         ("refund", 2550, pi["id"], "succeeded", {"order_id": "o-17"}))
        again = self.refund(pi["id"], "o-17:refund", "o-17")
        self.assertEqual((again.raw, again.headers.get("idempotent-replayed")),
                         (answer.raw, "true"))
        double = self.refund(pi["id"], "o-17:refund-2")
        self.assertEqual((double.status, double.error["code"]), (400, "charge_already_refunded"))
        self.assertEqual(self.client.get("/v1/refunds/" + refund["id"]).json(), refund)
        listed = self.client.get("/v1/refunds?payment_intent=" + pi["id"]).json()
        self.assertEqual((listed["object"], listed["data"], listed["has_more"]),
                         ("list", [refund], False))
        missing = self.refund("pi_000000000000000000000000")
        self.assertEqual((missing.status, missing.error["code"]), (404, "resource_missing"))
        self.assertEqual(self.client.get("/v1/refunds/re_nope").status, 404)
        self.assertEqual(self.client.get("/v1/payment_intents/pi_nope").error["code"],
                         "resource_missing")
        counts = self.counts()
        self.assertEqual((counts["refunds"], counts["orders"]["o-17"]["refunds"],
                          counts["orders"]["o-17"]["amount_refunded"]), (1, 1, 2550))
        self.assertEqual(counts["requests"]["create_refund"], 4)

    def test_pending_refund(self):
        self.faults(refund_pending_orders=["o-18"])
        pi = self.charge("o-18").json()
        refund = self.refund(pi["id"], "o-18:refund").json()
        self.assertEqual(refund["status"], "pending")
        self.assertEqual(self.counts()["refunds"], 1)  # money moves once: counted when created
        self.assertEqual(self.client.get("/v1/refunds/" + refund["id"]).json()["status"],
                         "pending")
        time.sleep(PROCESSING_MS / 1000 + 0.05)
        self.assertEqual(self.client.get("/v1/refunds/" + refund["id"]).json()["status"],
                         "succeeded")
        self.assertEqual(self.counts()["refunds"], 1)

    # --- control API -------------------------------------------------------------------------

    def test_requests_log(self):
        self.charge("o-19")
        self.charge("o-19")
        log = self.client.get("/_sim/requests?order_id=o-19", api_key=None).json()["data"]
        self.assertEqual([(entry["method"], entry["path"], entry["idempotency_key"],
                           entry["status"], entry["replayed"]) for entry in log],
                         [("POST", "/v1/payment_intents", "o-19:charge", 200, False),
                          ("POST", "/v1/payment_intents", "o-19:charge", 200, True)])

    def test_reset_clears_everything(self):
        pi = self.charge("o-20").json()
        self.faults(latency_ms=10)
        self.client.post("/_sim/reset", "", api_key=None)
        counts = self.counts()
        self.assertEqual((counts["charges"], counts["orders"], counts["idempotency_keys"]),
                         (0, {}, 0))
        self.assertEqual(self.client.get("/v1/payment_intents/" + pi["id"]).status, 404)
        self.assertNotIn("idempotent-replayed", self.charge("o-20").headers)
        self.assertEqual(self.client.get("/_sim/faults", api_key=None).json()["faults"]
                         ["latency_ms"], 0)

    def test_many_concurrent_connections(self):
        connections, per_connection = 200, 3
        failures = []
        barrier = threading.Barrier(connections)

        def run(index):
            try:
                client = Client(self.port, timeout=20)
                barrier.wait(timeout=20)
                for round_ in range(per_connection):
                    order_id = f"c-{index}-{round_}"
                    answer = client.post("/v1/payment_intents", charge_form(order_id),
                                         f"{order_id}:charge")
                    if answer.status != 200:
                        failures.append((order_id, answer.status))
                client.close()
            except Exception as error:  # noqa: BLE001 (reported below)
                failures.append((index, repr(error)))

        threads = [threading.Thread(target=run, args=(i,)) for i in range(connections)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        self.assertEqual(failures, [])
        self.assertEqual(self.counts()["charges"], connections * per_connection)
        self.assertLess(elapsed, 15)


class SignalTest(unittest.TestCase):
    def test_sigint_exits_0(self):
        process, port, directory, _ = start_sim()
        try:
            client = Client(port)
            self.assertEqual(client.get("/_sim/health", api_key=None).status, 200)
            # An idle keep-alive connection and a hanging request must not hold the exit up.
            client.request("POST", "/_sim/faults", json.dumps({"hang_rate": 1}))
            hanging = socket.create_connection(("127.0.0.1", port))
            hanging.sendall(b"GET /v1/refunds HTTP/1.1\r\nHost: x\r\n"
                            b"Authorization: Bearer sk_test_x\r\n\r\n")
            time.sleep(0.1)
            process.send_signal(signal.SIGINT)
            self.assertEqual(process.wait(timeout=10), 0)
            hanging.close()
            client.close()
        finally:
            if process.poll() is None:
                process.kill()
            directory.cleanup()


if __name__ == "__main__":
    unittest.main()
