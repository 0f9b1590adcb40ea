"""A Stripe stand-in on loopback: the few API endpoints billing calls, over real HTTP, for the
real ``stripe`` client (pointed here with ``api_base``). It records every request and keeps
Stripe's two guarantees billing relies on: a repeated ``Idempotency-Key`` gets the first
answer again, and a meter event's ``identifier`` is accepted once.

Tests set the state Stripe would hold (``invoices``, ``subscriptions``), make it fail the
next requests (``fail_next``), or make it accept a meter event and then stall before
answering (``stall``), as if the connection died after Stripe committed it. A cancel
(``DELETE /v1/subscriptions/{id}``) ends a subscription; one already ended is refused (400),
an unknown one is a 404 ``resource_missing``, as anything else unknown is.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl


@dataclass(frozen=True)
class StripeRequest:
    method: str
    path: str
    params: dict[str, str]  # form fields as sent: ``payload[value]``, ``metadata[rushes_tenant_id]``
    headers: dict[str, str]  # lower-cased names


class StripeStandIn:
    def __init__(self, server: ThreadingHTTPServer) -> None:
        self._server = server
        self._lock = threading.Lock()
        self.requests: list[StripeRequest] = []
        self.customers: dict[str, dict[str, Any]] = {}
        # Meter events Stripe holds, in the order it accepted them: one per identifier.
        self.meter_events: list[dict[str, Any]] = []
        self.invoices: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.fail_next = 0  # answer 500 to this many requests
        self.stall: set[str] = set()  # meter event identifiers to accept, then not answer
        self.stalled = threading.Event()  # set once a stalled request has been accepted
        self.release = threading.Event()  # stalled requests end (unanswered) once set
        self._replies: dict[str, tuple[int, dict[str, Any]]] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def accepted_identifiers(self) -> list[str]:
        with self._lock:
            return [event["identifier"] for event in self.meter_events]

    def meter_requests(self, identifier: str) -> int:
        with self._lock:
            return sum(
                1
                for r in self.requests
                if r.path == "/v1/billing/meter_events" and r.params.get("identifier") == identifier
            )

    def cancels(self, sub_id: str) -> list[StripeRequest]:
        """The requests that asked to cancel the subscription, repeats and failures included."""
        with self._lock:
            return [
                r for r in self.requests if r.method == "DELETE" and r.path == f"/v1/subscriptions/{sub_id}"
            ]

    def subscription(self, sub_id: str, customer: str, status: str, price: str) -> None:
        self.subscriptions[sub_id] = {
            "id": sub_id,
            "object": "subscription",
            "customer": customer,
            "status": status,
            "items": {
                "object": "list",
                "data": [
                    {
                        "id": f"si_{sub_id}",
                        "object": "subscription_item",
                        "price": {"id": price, "object": "price"},
                    }
                ],
            },
        }

    def invoice(self, invoice_id: str, customer: str, status: str, *, attempted: bool = True) -> None:
        self.invoices[invoice_id] = {
            "id": invoice_id,
            "object": "invoice",
            "customer": customer,
            "status": status,
            "attempted": attempted,
        }

    def answer(self, request: StripeRequest) -> tuple[int, dict[str, Any], bool]:
        """The status and body to send, and whether to stall instead of sending them."""
        with self._lock:
            self.requests.append(request)
            if self.fail_next > 0:
                self.fail_next -= 1
                return 500, _error("api_error", "the stand-in fails this one"), False
            key = request.headers.get("idempotency-key")
            if key is not None and key in self._replies:
                status, body = self._replies[key]
                return status, body, False
            status, body, stall = self._route(request)
            if key is not None:
                self._replies[key] = (status, body)
            return status, body, stall

    def _route(self, request: StripeRequest) -> tuple[int, dict[str, Any], bool]:
        method, path, params = request.method, request.path, request.params
        if method == "POST" and path == "/v1/customers":
            customer: dict[str, Any] = {
                "id": f"cus_{uuid.uuid4().hex[:14]}",
                "object": "customer",
                "name": params.get("name"),
            }
            self.customers[customer["id"]] = customer
            return 200, customer, False
        if method == "POST" and path == "/v1/billing_portal/sessions":
            if params.get("customer") not in self.customers:
                return 400, _error("invalid_request_error", "No such customer"), False
            session_id = f"bps_{uuid.uuid4().hex[:14]}"
            body = {
                "id": session_id,
                "object": "billing_portal.session",
                "customer": params["customer"],
                "url": f"https://billing.stripe.test/p/session/{session_id}",
            }
            return 200, body, False
        if method == "POST" and path == "/v1/billing/meter_events":
            event: dict[str, Any] = {
                "object": "billing.meter_event",
                "identifier": params["identifier"],
                "event_name": params["event_name"],
                "timestamp": int(params["timestamp"]),
                "payload": {
                    "stripe_customer_id": params["payload[stripe_customer_id]"],
                    "value": params["payload[value]"],
                },
            }
            if event["payload"]["stripe_customer_id"] not in self.customers:
                return 400, _error("invalid_request_error", "No such customer"), False
            if all(e["identifier"] != event["identifier"] for e in self.meter_events):
                self.meter_events.append(event)
            return 200, event, event["identifier"] in self.stall
        for prefix, objects in (("/v1/invoices/", self.invoices), ("/v1/subscriptions/", self.subscriptions)):
            if method == "GET" and path.startswith(prefix) and path[len(prefix) :] in objects:
                return 200, objects[path[len(prefix) :]], False
        if method == "DELETE" and path.startswith("/v1/subscriptions/"):
            return self._cancel(path.removeprefix("/v1/subscriptions/"))
        return 404, _error("invalid_request_error", f"No such resource: {path}", "resource_missing"), False

    def _cancel(self, sub_id: str) -> tuple[int, dict[str, Any], bool]:
        """Cancel now, as Stripe does: the subscription, canceled; a refusal once it has ended."""
        subscription = self.subscriptions.get(sub_id)
        if subscription is None:
            missing = _error("invalid_request_error", f"No such subscription: '{sub_id}'", "resource_missing")
            return 404, missing, False
        if subscription["status"] in ("canceled", "incomplete_expired"):
            message = "A canceled subscription can only update its cancellation_details and metadata."
            return 400, _error("invalid_request_error", message), False
        subscription["status"] = "canceled"
        return 200, subscription, False


def _error(kind: str, message: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, **({"code": code} if code else {})}}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    standin: StripeStandIn

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client killed mid-request leaves its connection broken: expected here.
        return


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _serve(self) -> None:
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        request = StripeRequest(
            self.command,
            path,
            dict(parse_qsl(body or query, keep_blank_values=True)),
            {k.lower(): v for k, v in self.headers.items()},
        )
        standin = self.server.standin
        status, answer, stall = standin.answer(request)
        if stall:
            standin.stalled.set()
            standin.release.wait(timeout=60)
            return  # never answered: the caller sees its connection end
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _serve
    do_POST = _serve
    do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def running_standin() -> Iterator[StripeStandIn]:
    server = _Server(("127.0.0.1", 0), _Handler)
    standin = server.standin = StripeStandIn(server)
    thread = threading.Thread(target=server.serve_forever, name="stripe-standin", daemon=True)
    thread.start()
    try:
        yield standin
    finally:
        standin.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
