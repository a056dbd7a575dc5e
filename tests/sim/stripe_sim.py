#!/usr/bin/env python3
"""tests/sim/stripe_sim.py: a payment provider speaking a subset of Stripe's API, for the
end-to-end and chaos tests.

    stripe_sim.py --port 0 --port-file PATH [--host 127.0.0.1] [--processing-ms 200] [--verbose]

Binds, writes the port it bound to PATH (written to a temporary file that is then renamed over
PATH, so a reader never sees a partial file), and serves until SIGTERM or SIGINT, then exits 0.
With --exit-with-parent it also exits when the process that started it dies (so a crashed test
leaves no simulator behind).

The provider side (under /v1, Bearer sk_test_... keys): payment intents, refunds, search, with
Stripe's idempotency semantics (the stored answer of a key's first request is replayed for the
same endpoint and parameters). The control side (under /_sim, no auth): counts, fault
injection, reset, health, and a per-order request log. tests/sim/README.md describes both.

Python's standard library only. One lock guards all state; a request holds it only for the few
microseconds its execution takes, never while it sleeps for an injected latency or hang.
"""

import argparse
import base64
import binascii
import itertools
import json
import os
import random
import re
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
MAX_IDEMPOTENCY_KEY = 255
MAX_AMOUNT = 99999999  # Stripe's limit: eight digits in the smallest currency unit

IDEMPOTENCY_MISMATCH = (
    "Keys for idempotent requests can only be used with the same parameters they were first "
    "used with. Try using a key other than '{}' if you meant to execute a different request.")
IDEMPOTENCY_IN_USE = (
    "There is currently another in-progress request using this Stripe token (probably the "
    "same idempotent key). Try again later.")

# The test payment methods that do not simply succeed: (code, decline_code, message).
DECLINES = {
    "pm_card_chargeDeclined": ("card_declined", "generic_decline", "Your card was declined."),
    "pm_card_visa_chargeDeclined": ("card_declined", "generic_decline",
                                    "Your card was declined."),
    "pm_card_visa_chargeDeclinedInsufficientFunds": (
        "card_declined", "insufficient_funds", "Your card has insufficient funds."),
    "pm_card_chargeDeclinedInsufficientFunds": (
        "card_declined", "insufficient_funds", "Your card has insufficient funds."),
    "pm_card_chargeDeclinedExpiredCard": ("expired_card", "expired_card",
                                          "Your card has expired."),
    "pm_card_chargeDeclinedProcessingError": (
        "processing_error", "processing_error",
        "An error occurred while processing your card. Try again in a little bit."),
}
NEEDS_ACTION = ("pm_card_authenticationRequired", "pm_card_threeDSecure2Required",
                "pm_card_authenticationRequiredOnSetup")
PROCESSING = "pm_card_processing"

PI_PARAMS = {"amount", "currency", "payment_method", "confirm", "description", "customer",
             "receipt_email", "statement_descriptor", "statement_descriptor_suffix",
             "return_url", "off_session", "error_on_requires_action", "setup_future_usage",
             "confirmation_method", "capture_method", "payment_method_types"}
REFUND_PARAMS = {"payment_intent", "amount", "reason", "instructions_email"}
# Parameters with a bracketed part: metadata[order_id], payment_method_types[], expand[] ...
PI_PREFIXES = ("metadata[", "payment_method_types[", "automatic_payment_methods[", "expand[",
               "payment_method_options[")
REFUND_PREFIXES = ("metadata[", "expand[")
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")

METADATA_KEY = re.compile(r"metadata\[([^\[\]]+)\]\Z")
PI_PATH = re.compile(r"/v1/payment_intents/([A-Za-z0-9_]+)\Z")
REFUND_PATH = re.compile(r"/v1/refunds/([A-Za-z0-9_]+)\Z")
CURRENCY = re.compile(r"[a-z]{3}\Z")
SEARCH_QUERY = re.compile(
    r"""\s*metadata\[(['"])order_id\1\]\s*:\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\s*\Z""")
UNESCAPE = re.compile(r"\\(.)")

FAULT_DEFAULTS = {
    "latency_ms": 0,
    "error_rate_before": 0.0,
    "error_rate_after": 0.0,
    "error_status": 500,
    "reset_after_charge_rate": 0.0,
    "rate_limit_rate": 0.0,
    "retry_after_s": 1,
    "hang_rate": 0.0,
    "hang_ms": 30000,
    "seed": None,
    "only_paths": None,
    "only_methods": None,
    "decline_orders": [],
    "refund_pending_orders": [],
    "search_lag_ms": 0,
}
RATES = ("error_rate_before", "error_rate_after", "reset_after_charge_rate", "rate_limit_rate",
         "hang_rate")
DURATIONS = ("latency_ms", "hang_ms", "search_lag_ms")
FAULT_NAMES = ("hang", "rate_limit", "error_before", "error_after", "reset")
REQUEST_KINDS = ("create_payment_intent", "create_refund", "get", "search", "list", "other")

DROP = "drop"    # answer nothing, close the connection (a reset made the request stale)
RESET = "reset"  # answer nothing, reset the TCP connection (the reset_after_charge fault)


def dumps(obj):
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def error_body(err_type, message, code=None, param=None, **extra):
    err = {"type": err_type, "message": message}
    if code is not None:
        err["code"] = code
    if param is not None:
        err["param"] = param
    err.update(extra)
    return {"error": err}


def invalid(message, code=None, param=None, status=400):
    return status, error_body("invalid_request_error", message, code, param)


def new_id(prefix):
    return prefix + os.urandom(12).hex()


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_string_list(value):
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


class Faults:
    """One immutable set of fault settings, parsed and checked from POST /_sim/faults."""

    def __init__(self, settings):
        self.settings = settings
        for name, value in settings.items():
            setattr(self, name, value)
        self.decline_set = frozenset(self.decline_orders)
        self.refund_pending_set = frozenset(self.refund_pending_orders)
        self.random_faults = any(self.settings[name] > 0 for name in RATES)
        self.active = self.random_faults or self.latency_ms > 0

    @staticmethod
    def parse(obj):
        """Returns (Faults, None) or (None, the reason obj is not a valid fault setting)."""
        if not isinstance(obj, dict):
            return None, "the body must be a JSON object"
        unknown = sorted(set(obj) - set(FAULT_DEFAULTS))
        if unknown:
            return None, "unknown fault setting(s): " + ", ".join(unknown)
        settings = dict(FAULT_DEFAULTS)
        for name, value in obj.items():
            if value is None and name not in ("seed", "only_paths", "only_methods"):
                continue  # null means the default
            if name in RATES:
                if not is_number(value) or not 0 <= value <= 1:
                    return None, f"{name} must be a number from 0 to 1"
            elif name in DURATIONS:
                if not is_number(value) or value < 0:
                    return None, f"{name} must be a non-negative number of milliseconds"
            elif name == "error_status":
                if not isinstance(value, int) or isinstance(value, bool) or not 500 <= value <= 599:
                    return None, "error_status must be an integer from 500 to 599"
            elif name == "retry_after_s":
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    return None, "retry_after_s must be a non-negative integer"
            elif name == "seed":
                if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                    return None, "seed must be an integer or null"
            elif name == "only_methods":
                if value is not None and (not is_string_list(value) or
                                          not set(value) <= {"GET", "POST"}):
                    return None, "only_methods must be null or a list of \"GET\" and \"POST\""
            elif not is_string_list(value):  # only_paths, decline_orders, refund_pending_orders
                return None, f"{name} must be a list of strings" + (
                    " or null" if name == "only_paths" else "")
            settings[name] = value
        return Faults(settings), None

    def applies(self, method, path):
        if self.only_methods is not None and method not in self.only_methods:
            return False
        if self.only_paths is None:
            return True
        for pattern in self.only_paths:
            if pattern.endswith("*"):
                if path.startswith(pattern[:-1]):
                    return True
            elif path == pattern:
                return True
        return False


class Draw:
    """Which random faults hit one request."""
    __slots__ = FAULT_NAMES

    def __init__(self, hang=False, rate_limit=False, error_before=False, error_after=False,
                 reset=False):
        self.hang = hang
        self.rate_limit = rate_limit
        self.error_before = error_before
        self.error_after = error_after
        self.reset = reset


NO_FAULT = Draw()


class Epoch:
    """The state between two resets. Its event is set by the next reset (and at shutdown): a
    request sleeping for an injected latency or hang wakes at once and drops its connection instead
    of executing against the state of a later test."""

    def __init__(self):
        self.event = threading.Event()


class Entry:
    """What one idempotency key holds: in flight until its first request stored an answer."""
    __slots__ = ("endpoint", "params", "status", "body", "request_id")

    def __init__(self, endpoint, params):
        self.endpoint = endpoint
        self.params = params
        self.status = None  # None while the first request is in flight
        self.body = None
        self.request_id = None


class PaymentIntent:
    __slots__ = ("obj", "order_id", "processing_since", "refunded", "created", "seq")


class Refund:
    __slots__ = ("obj", "order_id", "pending_since", "seq")


class Sim:
    """All the simulator's state, guarded by self.lock."""

    def __init__(self, processing_ms):
        self.lock = threading.Lock()
        self.processing_s = processing_ms / 1000.0
        self.started = time.monotonic()
        self.seq = itertools.count()
        self.epoch = Epoch()
        self._clear()

    def _clear(self):
        self.faults = Faults(dict(FAULT_DEFAULTS))
        self.rng = random.Random()
        self.pis = {}
        self.pis_by_order = {}
        self.refunds = {}
        self.refunds_by_pi = {}
        self.idem = {}
        self.keys_seen = set()
        self.charges = 0
        self.refund_count = 0
        self.pis_created = 0
        self.replays = 0
        self.requests = dict.fromkeys(REQUEST_KINDS, 0)
        self.fault_counts = dict.fromkeys(FAULT_NAMES, 0)
        self.responses = {}
        self.orders = {}
        self.log = {}

    def reset(self):
        with self.lock:
            old = self.epoch
            self.epoch = Epoch()
            self._clear()
        old.event.set()

    def stop(self):
        with self.lock:
            epoch = self.epoch
        epoch.event.set()

    def set_faults(self, faults):
        with self.lock:
            self.faults = faults
            self.rng = random.Random(faults.seed)

    # --- bookkeeping ------------------------------------------------------------------------------

    def begin(self, kind):
        """Counts a /v1 request; returns the faults and the epoch it runs under."""
        with self.lock:
            self.requests[kind] += 1
            return self.faults, self.epoch

    def draw(self, faults):
        """Draws all five faults for one request (always five numbers, so a seed gives one sequence
        whichever faults are enabled)."""
        with self.lock:
            r = [self.rng.random() for _ in FAULT_NAMES]
        draw = Draw(r[0] < faults.hang_rate, r[1] < faults.rate_limit_rate,
                    r[2] < faults.error_rate_before, r[3] < faults.error_rate_after,
                    r[4] < faults.reset_after_charge_rate)
        return draw

    def count_fault(self, name):
        with self.lock:
            self.fault_counts[name] += 1

    def _order(self, order_id):
        order = self.orders.get(order_id)
        if order is None:
            order = {"charges": 0, "refunds": 0, "amount_charged": 0, "amount_refunded": 0,
                     "payment_intents": 0}
            self.orders[order_id] = order
        return order

    def record(self, epoch, name, arg, form, query, entry, status):
        """Logs one answered /v1 request (entry: method, path, idempotency_key, replayed, fault)
        under the order it is about."""
        with self.lock:
            if self.epoch is not epoch:
                return
            order_id = self._order_of(name, arg, form, query)
            key = str(status)
            self.responses[key] = self.responses.get(key, 0) + 1
            if order_id is not None:
                entry["status"] = status
                entry["t_ms"] = round((time.monotonic() - self.started) * 1000.0, 1)
                self.log.setdefault(order_id, []).append(entry)

    def _order_of(self, name, arg, form, query):
        """The order a /v1 request is about, for the request log (None when unknown)."""
        if name == "create_payment_intent":
            return form.get("metadata[order_id]")
        if name == "create_refund":
            pi = self.pis.get(form.get("payment_intent", ""))
            return pi.order_id if pi is not None else form.get("metadata[order_id]")
        if name == "get_payment_intent":
            pi = self.pis.get(arg)
            return pi.order_id if pi is not None else None
        if name == "get_refund":
            refund = self.refunds.get(arg)
            return refund.order_id if refund is not None else None
        if name == "search":
            return parse_search(query.get("query", ""))
        if name == "list":
            pi = self.pis.get(query.get("payment_intent", ""))
            return pi.order_id if pi is not None else None
        return None

    def counts(self):
        with self.lock:
            return {
                "charges": self.charges,
                "refunds": self.refund_count,
                "payment_intents_created": self.pis_created,
                "idempotency_keys": len(self.keys_seen),
                "replays": self.replays,
                "requests": dict(self.requests),
                "responses": dict(self.responses),
                "faults": dict(self.fault_counts),
                "orders": {oid: dict(order) for oid, order in self.orders.items()},
            }

    def requests_of(self, order_id):
        with self.lock:
            return [dict(entry) for entry in self.log.get(order_id, ())]

    # --- idempotency ------------------------------------------------------------------------------

    def idem_begin(self, epoch, key, endpoint, params):
        """Returns (early answer or None, claimed Entry or None). The early answer is DROP, a replay
        (status, body, headers), a parameter mismatch or the in-flight conflict."""
        with self.lock:
            if self.epoch is not epoch:
                return DROP, None
            self.keys_seen.add(key)
            entry = self.idem.get(key)
            if entry is None:
                entry = Entry(endpoint, params)
                self.idem[key] = entry
                return None, entry
            if entry.endpoint != endpoint or entry.params != params:
                status, obj = invalid(IDEMPOTENCY_MISMATCH.format(key[1]))
                obj["error"]["type"] = "idempotency_error"
                return (status, dumps(obj), ()), None
            if entry.status is None:
                status, obj = invalid(IDEMPOTENCY_IN_USE, "idempotency_key_in_use", status=409)
                return (status, dumps(obj), ()), None
            self.replays += 1
            return (entry.status, entry.body, (("Idempotent-Replayed", "true"),
                                               ("Original-Request", entry.request_id))), None

    def _store(self, entry, status, body, request_id):
        entry.status = status
        entry.body = body
        entry.request_id = request_id

    def idem_store(self, epoch, entry, status, body, request_id):
        with self.lock:
            if self.epoch is epoch:
                self._store(entry, status, body, request_id)

    def idem_release(self, epoch, key, entry):
        """Forgets a claimed key whose request stored no answer (429, 502-504, a crash)."""
        with self.lock:
            if self.epoch is epoch and entry.status is None and self.idem.get(key) is entry:
                del self.idem[key]

    # --- execution --------------------------------------------------------------------------------

    def execute(self, epoch, name, arg, pairs, form, query, entry, draw, request_id,
                error_status):
        """Executes one /v1 request under the lock and stores its answer under its key. Returns the
        answer (status, body, content type) to send, or DROP or RESET."""
        with self.lock:
            if self.epoch is not epoch:
                return DROP
            now = time.monotonic()
            if name == "create_payment_intent":
                status, obj = self._create_payment_intent(pairs, form, now)
            elif name == "create_refund":
                status, obj = self._create_refund(pairs, form, now)
            elif name == "get_payment_intent":
                status, obj = self._get_payment_intent(arg, now)
            elif name == "get_refund":
                status, obj = self._get_refund(arg, now)
            elif name == "search":
                status, obj = self._search(query, now)
            else:
                status, obj = self._list_refunds(query, now)
            body = dumps(obj)
            if draw.error_after:
                self.fault_counts["error_after"] += 1
                answer = fault_answer(error_status)
                if entry is not None:
                    if answer[0] == 500:
                        self._store(entry, answer[0], answer[1], request_id)
                    else:
                        self._store(entry, status, body, request_id)
                return answer
            if entry is not None:
                self._store(entry, status, body, request_id)
            if draw.reset:
                self.fault_counts["reset"] += 1
                return RESET
            return status, body, "application/json"

    def _charge_succeeded(self, pi):
        pi.obj["status"] = "succeeded"
        pi.obj["amount_received"] = pi.obj["amount"]
        self.charges += 1
        if pi.order_id is not None:
            order = self._order(pi.order_id)
            order["charges"] += 1
            order["amount_charged"] += pi.obj["amount"]

    def _mature_pi(self, pi, now):
        if pi.processing_since is not None and now - pi.processing_since >= self.processing_s:
            pi.processing_since = None
            self._charge_succeeded(pi)

    def _mature_refund(self, refund, now):
        if refund.pending_since is not None and now - refund.pending_since >= self.processing_s:
            refund.pending_since = None
            refund.obj["status"] = "succeeded"

    def _create_payment_intent(self, pairs, form, now):
        for name, _ in pairs:
            if name not in PI_PARAMS and not name.startswith(PI_PREFIXES):
                return invalid(f"Received unknown parameter: {name}", "parameter_unknown", name)
        amount = form.get("amount")
        if amount is None or amount == "":
            return invalid("Missing required param: amount.", "parameter_missing", "amount")
        if not amount.isdigit() or not amount.isascii() or int(amount) < 1:
            return invalid(f"Invalid integer: {amount}", "parameter_invalid_integer", "amount")
        if int(amount) > MAX_AMOUNT:
            return invalid("Amount must be no more than $999,999.99", "amount_too_large", "amount")
        currency = form.get("currency")
        if currency is None or currency == "":
            return invalid("Missing required param: currency.", "parameter_missing", "currency")
        if not CURRENCY.match(currency):
            return invalid(f"Invalid currency: {currency}.", param="currency")
        confirm = form.get("confirm", "false")
        if confirm not in ("true", "false"):
            return invalid(f"Invalid boolean: {confirm}", param="confirm")
        capture = form.get("capture_method", "automatic")
        if capture not in ("automatic", "automatic_async"):
            return invalid(f"capture_method {capture} is not simulated.", param="capture_method")
        pm = form.get("payment_method")
        if pm is not None and not pm.startswith("pm_card_"):
            return invalid(f"No such PaymentMethod: '{pm}'", "resource_missing", "payment_method")
        if confirm == "true" and not pm:
            return invalid("Missing required param: payment_method.", "parameter_missing",
                           "payment_method")
        metadata = {}
        for name, value in pairs:
            match = METADATA_KEY.match(name)
            if match:
                metadata[match.group(1)] = value
        order_id = metadata.get("order_id")

        pi = PaymentIntent()
        pi.order_id = order_id
        pi.processing_since = None
        pi.refunded = 0
        pi.created = now
        pi.seq = next(self.seq)
        pi.obj = {
            "id": new_id("pi_"),
            "object": "payment_intent",
            "amount": int(amount),
            "amount_received": 0,
            "currency": currency,
            "status": "requires_payment_method" if not pm else "requires_confirmation",
            "payment_method": pm,
            "capture_method": capture,
            "confirmation_method": "automatic",
            "description": form.get("description"),
            "metadata": metadata,
            "latest_charge": None,
            "last_payment_error": None,
            "next_action": None,
            "created": int(time.time()),
            "livemode": False,
        }
        self.pis[pi.obj["id"]] = pi
        self.pis_created += 1
        if order_id is not None:
            self.pis_by_order.setdefault(order_id, []).append(pi)
            self._order(order_id)["payment_intents"] += 1
        if confirm != "true":
            return 200, pi.obj

        if order_id in self.faults.decline_set and pm not in DECLINES:
            decline = DECLINES["pm_card_chargeDeclined"]
        else:
            decline = DECLINES.get(pm)
        if decline is not None:
            code, decline_code, message = decline
            charge = new_id("ch_")
            error = {"type": "card_error", "code": code, "decline_code": decline_code,
                     "message": message, "charge": charge, "payment_method": {"id": pm}}
            pi.obj.update(status="requires_payment_method", latest_charge=charge,
                          last_payment_error=error)
            body = error_body("card_error", message, code, decline_code=decline_code, charge=charge,
                              payment_intent=pi.obj)
            return 402, body
        if pm in NEEDS_ACTION:
            pi.obj.update(status="requires_action",
                          next_action={"type": "use_stripe_sdk", "use_stripe_sdk": {}})
            return 200, pi.obj
        pi.obj["latest_charge"] = new_id("ch_")
        if pm == PROCESSING:
            pi.obj["status"] = "processing"
            pi.processing_since = now
            return 200, pi.obj
        self._charge_succeeded(pi)
        return 200, pi.obj

    def _create_refund(self, pairs, form, now):
        for name, _ in pairs:
            if name not in REFUND_PARAMS and not name.startswith(REFUND_PREFIXES):
                return invalid(f"Received unknown parameter: {name}", "parameter_unknown", name)
        pi_id = form.get("payment_intent")
        if not pi_id:
            return invalid("Missing required param: payment_intent.", "parameter_missing",
                           "payment_intent")
        pi = self.pis.get(pi_id)
        if pi is None:
            return invalid(f"No such payment_intent: '{pi_id}'", "resource_missing",
                           "payment_intent", status=404)
        reason = form.get("reason")
        if reason is not None and reason not in REFUND_REASONS:
            return invalid(f"Invalid reason: must be one of {', '.join(REFUND_REASONS)}",
                           param="reason")
        if pi.obj["status"] != "succeeded":
            return invalid(f"This PaymentIntent ({pi_id}) does not have a successful charge to "
                           "refund.", "charge_not_refundable", "payment_intent")
        left = pi.obj["amount"] - pi.refunded
        if left <= 0:
            return invalid(f"Charge {pi.obj['latest_charge']} has already been refunded.",
                           "charge_already_refunded")
        amount = form.get("amount")
        if amount is None:
            amount = left
        elif not amount.isdigit() or not amount.isascii() or int(amount) < 1:
            return invalid(f"Invalid integer: {amount}", "parameter_invalid_integer", "amount")
        elif int(amount) > left:
            return invalid(f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                           f"({left})", "amount_too_large", "amount")
        else:
            amount = int(amount)
        metadata = {}
        for name, value in pairs:
            match = METADATA_KEY.match(name)
            if match:
                metadata[match.group(1)] = value

        refund = Refund()
        refund.order_id = pi.order_id
        refund.seq = next(self.seq)
        pending = pi.order_id is not None and pi.order_id in self.faults.refund_pending_set
        refund.pending_since = now if pending else None
        refund.obj = {
            "id": new_id("re_"),
            "object": "refund",
            "amount": amount,
            "currency": pi.obj["currency"],
            "payment_intent": pi_id,
            "charge": pi.obj["latest_charge"],
            "status": "pending" if pending else "succeeded",
            "reason": reason,
            "metadata": metadata,
            "created": int(time.time()),
        }
        self.refunds[refund.obj["id"]] = refund
        self.refunds_by_pi.setdefault(pi_id, []).append(refund)
        pi.refunded += amount
        self.refund_count += 1
        if pi.order_id is not None:
            order = self._order(pi.order_id)
            order["refunds"] += 1
            order["amount_refunded"] += amount
        return 200, refund.obj

    def _get_payment_intent(self, pi_id, now):
        pi = self.pis.get(pi_id)
        if pi is None:
            return invalid(f"No such payment_intent: '{pi_id}'", "resource_missing", "id", 404)
        self._mature_pi(pi, now)
        return 200, pi.obj

    def _get_refund(self, refund_id, now):
        refund = self.refunds.get(refund_id)
        if refund is None:
            return invalid(f"No such refund: '{refund_id}'", "resource_missing", "id", 404)
        self._mature_refund(refund, now)
        return 200, refund.obj

    def _search(self, query, now):
        text = query.get("query")
        if text is None:
            return invalid("Missing required param: query.", "parameter_missing", "query")
        order_id = parse_search(text)
        if order_id is None:
            return invalid("The simulator only supports the search query metadata['order_id']:'...'"
                           f", not: {text}", "parameter_invalid", "query")
        lag = self.faults.search_lag_ms / 1000.0
        found = [pi for pi in self.pis_by_order.get(order_id, ()) if now - pi.created >= lag]
        data = []
        for pi in sorted(found, key=lambda p: p.seq, reverse=True):
            self._mature_pi(pi, now)
            data.append(pi.obj)
        return 200, {"object": "search_result", "data": data, "has_more": False, "next_page": None,
                     "url": "/v1/payment_intents/search"}

    def _list_refunds(self, query, now):
        pi_id = query.get("payment_intent")
        refunds = self.refunds_by_pi.get(pi_id, []) if pi_id else list(self.refunds.values())
        data = []
        for refund in sorted(refunds, key=lambda r: r.seq, reverse=True):
            self._mature_refund(refund, now)
            data.append(refund.obj)
        return 200, {"object": "list", "data": data, "has_more": False, "url": "/v1/refunds"}


def parse_search(text):
    """The order id of a query metadata['order_id']:'<value>' (or with double quotes), else None."""
    match = SEARCH_QUERY.match(text)
    if match is None:
        return None
    value = match.group(2) if match.group(2) is not None else match.group(3)
    return UNESCAPE.sub(r"\1", value)


def fault_answer(status):
    """The answer of an injected server error: Stripe's JSON for 500, a proxy's HTML otherwise."""
    if status == 500:
        return 500, dumps(error_body("api_error", "An unknown error occurred (simulated).")), \
            "application/json"
    body = f"<html><body><h1>{status} (simulated)</h1></body></html>\n".encode("ascii")
    return status, body, "text/html"


def route(method, path):
    """(endpoint, id in the path, request-count kind) of a /v1 request; endpoint None if unknown."""
    if method == "POST":
        if path == "/v1/payment_intents":
            return "create_payment_intent", None, "create_payment_intent"
        if path == "/v1/refunds":
            return "create_refund", None, "create_refund"
    elif method == "GET":
        if path == "/v1/payment_intents/search":
            return "search", None, "search"
        if path == "/v1/refunds":
            return "list", None, "list"
        match = PI_PATH.match(path)
        if match:
            return "get_payment_intent", match.group(1), "get"
        match = REFUND_PATH.match(path)
        if match:
            return "get_refund", match.group(1), "get"
    return None, None, "other"


def api_key_of(header):
    """The API key of an Authorization header (Bearer, or Basic with the key as user), or None."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme == "bearer":
        return value or None
    if scheme == "basic":
        try:
            return base64.b64decode(value, validate=True).decode("utf-8").partition(":")[0] or None
        except (binascii.Error, UnicodeDecodeError):
            return None
    return None


class Headers(dict):
    """A request's header fields by lower-case name (repeated fields joined by ", ")."""

    def get(self, name, default=None):
        return dict.get(self, name.lower(), default)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "stripe-sim/1"
    sys_version = ""
    timeout = None  # blocking sockets: no poll() before every recv and send

    request_ids = itertools.count(1)

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
        """BaseHTTPRequestHandler.parse_request without the email package's header parser, which
        cost more CPU than all the rest of a request. Same contract: returns False after
        answering an error; sets command, path, request_version, headers, close_connection."""
        self.command = None
        self.request_version = "HTTP/1.1"  # so that even an error here gets a status line
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

    def do_PATCH(self):
        self._handle("PATCH")

    # --- framing ----------------------------------------------------------------------------------

    def _send(self, status, body, content_type="application/json", headers=()):
        reason = self.responses.get(status, ("",))[0]
        lines = [f"HTTP/1.1 {status} {reason}",
                 f"Content-Type: {content_type}",
                 f"Content-Length: {len(body)}",
                 f"Request-Id: {self.request_id}"]
        lines.extend(f"{name}: {value}" for name, value in headers)
        if self.close_connection:
            lines.append("Connection: close")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        if self.server.verbose:
            self.log_request(status)

    def _send_json(self, status, obj, headers=()):
        self._send(status, dumps(obj), headers=headers)

    def _read_body(self):
        """The request's body, or None after answering a framing error (and closing)."""
        encoding = self.headers.get("Transfer-Encoding", "").strip().lower()
        if encoding and encoding != "identity":
            if encoding != "chunked":
                return self._framing_error(501, "unsupported Transfer-Encoding")
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        if not length.strip().isdigit():
            return self._framing_error(400, "invalid Content-Length")
        length = int(length)
        if length > MAX_BODY:
            return self._framing_error(413, "body too large")
        return self.rfile.read(length)

    def _read_chunked(self):
        parts = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
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

    def _framing_error(self, status, message):
        self.close_connection = True
        self._send_json(status, error_body("invalid_request_error", message))
        return None

    def _reset_connection(self):
        """Resets the TCP connection (RST, no answer): SO_LINGER 0, then close."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()  # the socket closes only when no file made from it is still open
            self.connection.close()
        except OSError:
            pass

    # --- dispatch ---------------------------------------------------------------------------------

    def _handle(self, method):
        self.request_id = "req_%014x" % next(self.request_ids)
        try:
            body = self._read_body()
            if body is None:
                return
            url = urlsplit(self.path)
            if url.path.startswith("/_sim/"):
                self._control(method, url.path, url.query, body)
            elif url.path.startswith("/v1/"):
                self._v1(method, url.path, url.query, body)
            else:
                self._send_json(404, error_body(
                    "invalid_request_error", f"Unrecognized request URL ({method}: {url.path})."))
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception:  # a simulator bug: say so, to the test and on stderr
            traceback.print_exc()
            self.close_connection = True
            try:
                self._send_json(500, error_body("api_error", "stripe_sim.py crashed: " +
                                                traceback.format_exc(limit=1).strip()))
            except OSError:
                pass

    def _v1(self, method, path, query_text, body):
        sim = self.server.sim
        name, arg, kind = route(method, path)
        faults, epoch = sim.begin(kind)
        if name is None:
            self._send_json(404, error_body(
                "invalid_request_error", f"Unrecognized request URL ({method}: {path})."))
            sim.record(epoch, None, None, {}, {}, None, 404)
            return
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True) \
            if method == "POST" else []
        form = dict(pairs)
        query = dict(parse_qsl(query_text, keep_blank_values=True)) if query_text else {}
        ikey = (self.headers.get("Idempotency-Key") or "").strip() if method == "POST" else ""
        log = {"method": method, "path": self.path, "idempotency_key": ikey or None,
               "replayed": False, "fault": None}
        status = self._v1_answer(sim, faults, epoch, method, path, name, arg, pairs, form, query,
                                 ikey, log)
        sim.record(epoch, name, arg, form, query, log, status)

    def _v1_answer(self, sim, faults, epoch, method, path, name, arg, pairs, form, query, ikey,
                   log):
        """Answers one /v1 request; returns the status sent (0 when nothing was)."""
        applies = faults.active and faults.applies(method, path)
        draw = sim.draw(faults) if applies and faults.random_faults else NO_FAULT

        if draw.hang:
            sim.count_fault("hang")
            log["fault"] = "hang"
            if epoch.event.wait(faults.hang_ms / 1000.0):
                return self._drop()

        api_key = api_key_of(self.headers.get("Authorization"))
        if api_key is None:
            return self._answer(401, error_body(
                "invalid_request_error", "You did not provide an API key. You need to provide your "
                "API key in the Authorization header, using Bearer auth."))
        if not api_key.startswith("sk_test_"):
            return self._answer(401, error_body(
                "invalid_request_error", f"Invalid API Key provided: {api_key[:8]}****",
                "api_key_invalid"))
        latency = faults.latency_ms / 1000.0 if applies else 0.0

        if method == "POST" and draw.rate_limit:
            sim.count_fault("rate_limit")
            log["fault"] = "rate_limit"
            if latency and epoch.event.wait(latency):
                return self._drop()
            return self._answer(429, error_body(
                "invalid_request_error", "Too many requests hit the API too quickly (simulated).",
                "rate_limit"), (("Retry-After", str(faults.retry_after_s)),))

        if len(ikey) > MAX_IDEMPOTENCY_KEY:
            return self._answer(400, error_body(
                "invalid_request_error", "Keys for idempotent requests can only be up to "
                f"{MAX_IDEMPOTENCY_KEY} characters long."))

        key = entry = early = None
        if ikey:
            key = (api_key, ikey)
            early, entry = sim.idem_begin(epoch, key, (method, path), sorted(pairs))
            if early is DROP:
                return self._drop()
        try:
            if latency and epoch.event.wait(latency):  # the key is in flight meanwhile
                return self._drop()
            if early is not None:
                status, body, headers = early
                log["replayed"] = bool(headers)
                self._send(status, body, headers=headers)
                return status
            if draw.error_before:
                sim.count_fault("error_before")
                log["fault"] = "error_before"
                status, body, content_type = fault_answer(faults.error_status)
                if status == 500 and entry is not None:  # Stripe stores and replays its 500s
                    sim.idem_store(epoch, entry, status, body, self.request_id)
                self._send(status, body, content_type)
                return status
            answer = sim.execute(epoch, name, arg, pairs, form, query, entry, draw, self.request_id,
                                 faults.error_status)
            if answer is DROP:
                return self._drop()
            if answer is RESET:
                log["fault"] = "reset"
                self._reset_connection()
                return 0
            if draw.error_after:
                log["fault"] = "error_after"
            status, body, content_type = answer
            self._send(status, body, content_type)
            return status
        finally:
            if entry is not None:
                sim.idem_release(epoch, key, entry)

    def _answer(self, status, obj, headers=()):
        self._send_json(status, obj, headers)
        return status

    def _drop(self):
        self.close_connection = True
        return 0

    # --- control API ------------------------------------------------------------------------------

    def _control(self, method, path, query_text, body):
        sim = self.server.sim
        if path == "/_sim/health" and method == "GET":
            self._send_json(200, {"ok": True})
        elif path == "/_sim/counts" and method == "GET":
            self._send_json(200, sim.counts())
        elif path == "/_sim/faults" and method == "GET":
            with sim.lock:
                settings = sim.faults.settings
            self._send_json(200, {"ok": True, "faults": settings})
        elif path == "/_sim/faults" and method == "POST":
            try:
                obj = json.loads(body.decode("utf-8")) if body.strip() else {}
            except (UnicodeDecodeError, ValueError) as error:
                self._send_json(400, {"ok": False, "error": f"invalid JSON: {error}"})
                return
            faults, problem = Faults.parse(obj)
            if faults is None:
                self._send_json(400, {"ok": False, "error": problem})
                return
            sim.set_faults(faults)
            self._send_json(200, {"ok": True, "faults": faults.settings})
        elif path == "/_sim/reset" and method == "POST":
            sim.reset()
            self._send_json(200, {"ok": True})
        elif path == "/_sim/requests" and method == "GET":
            order_id = dict(parse_qsl(query_text, keep_blank_values=True)).get("order_id")
            if order_id is None:
                self._send_json(400, {"ok": False, "error": "order_id is required"})
                return
            self._send_json(200, {"object": "list", "order_id": order_id,
                                  "data": sim.requests_of(order_id)})
        elif path in ("/_sim/health", "/_sim/counts", "/_sim/faults", "/_sim/reset",
                      "/_sim/requests"):
            self._send_json(405, {"ok": False, "error": f"{method} is not allowed on {path}"})
        else:
            self._send_json(404, {"ok": False, "error": f"no control endpoint {path}"})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # server_close() must not wait for idle keep-alive connections
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address, sim, verbose):
        self.sim = sim
        self.verbose = verbose
        super().__init__(address, Handler)

    def server_bind(self):
        # HTTPServer.server_bind() also resolves the host's name (socket.getfqdn), which can stall
        # for seconds on a machine without DNS; nothing here needs it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address):
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
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
    parser.add_argument("--processing-ms", type=float, default=200.0,
                        help="how long processing payments and pending refunds take")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    parser.add_argument("--exit-with-parent", action="store_true",
                        help="exit 0 when the parent process dies (no simulator outlives a "
                        "crashed test)")
    args = parser.parse_args(argv)

    threading.stack_size(1 << 20)  # hundreds of connections, one thread each
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    sim = Sim(args.processing_ms)
    server = Server((args.host, args.port), sim, args.verbose)
    port = server.server_address[1]
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                               daemon=True)
    serving.start()
    if args.port_file:
        write_port_file(args.port_file, port)
    if args.verbose:
        print(f"stripe_sim: listening on {args.host}:{port}", file=sys.stderr, flush=True)

    parent = os.getppid()
    while not stop.wait(0.5):
        if args.exit_with_parent and os.getppid() != parent:
            break
    sim.stop()
    server.shutdown()
    server.server_close()
    sys.stderr.flush()
    os._exit(0)  # connection threads are daemons blocked in reads; nothing else to wait for


if __name__ == "__main__":
    main()
