"""A real webhook endpoint on loopback: an HTTP server in a thread that records every request
and answers as a test tells it to (fail the next N, redirect, be slow)."""

from __future__ import annotations

import datetime
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes


class Receiver:
    def __init__(self, server: ThreadingHTTPServer, tls: bool) -> None:
        self._server = server
        self._tls = tls
        self._lock = threading.Lock()
        self.requests: list[Received] = []
        self.fail_next = 0  # answer 500 to this many requests
        self.status = 200  # then answer this
        self.headers: dict[str, str] = {}
        self.delay = 0.0  # seconds before answering

    @property
    def url(self) -> str:
        port = self._server.server_address[1]
        # Certificates name hosts, not addresses: over TLS the receiver is "localhost".
        return f"https://localhost:{port}/hook" if self._tls else f"http://127.0.0.1:{port}/hook"

    def record(self, request: Received) -> tuple[int, float]:
        with self._lock:
            self.requests.append(request)
            if self.fail_next > 0:
                self.fail_next -= 1
                return 500, self.delay
            return self.status, self.delay

    def event_ids(self) -> list[str]:
        with self._lock:
            return [r.headers["rushes-event-id"] for r in self.requests]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Dispatchers send dozens of requests at once; the default backlog of 5 would refuse some.
    request_queue_size = 128
    receiver: Receiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A dispatcher that gave up on a slow answer closed the connection: expected here.
        return


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        receiver = self.server.receiver
        status, delay = receiver.record(
            Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        )
        time.sleep(delay)
        answer = b"receiver says no" if status >= 400 else b"ok"
        self.send_response(status)
        for name, value in receiver.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def running_receiver(tls: ssl.SSLContext | None = None) -> Iterator[Receiver]:
    server = _Server(("127.0.0.1", 0), _Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    receiver = server.receiver = Receiver(server, tls is not None)
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def tls_contexts(folder: Path, host: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A throwaway CA and a certificate it signs for ``host``: the server's TLS context, and a
    client's that trusts only that CA."""
    now = datetime.datetime.now(datetime.UTC)

    def certificate(
        subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None, signer: Any
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(
                issuer.subject if issuer else x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
            )
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
        )
        if issuer is None:
            builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate("Rushes test CA", ca_key, None, ca_key)
    leaf = certificate(host, leaf_key, ca, ca_key)
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    return server, ssl.create_default_context(cafile=str(ca_file))
