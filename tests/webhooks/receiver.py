"""A real HTTP receiver on a free loopback port that checks Budding's signatures."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from budding.webhooks.signing import InvalidSignature, verify_signature


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool
    answered: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers 500 to the first ``fail_first`` requests, 400 to a bad signature, else 200.
    Like a real receiver, it processes each ``Budding-Delivery`` id once. With ``hold``,
    each request waits for that event before it is answered (``arrived`` counts the
    requests that came in, answered or not): to catch attempts made at the same time."""

    secret: str = ""
    fail_first: int = 0
    hold: threading.Event | None = None
    arrived: int = 0
    requests: list[Received] = field(default_factory=list)
    processed: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/hooks"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k: v for k, v in self.headers.items()}
                with receiver.lock:
                    receiver.arrived += 1
                if receiver.hold is not None:
                    receiver.hold.wait(timeout=30)
                try:
                    verify_signature(receiver.secret, headers.get("Budding-Signature"), body)
                    verified = True
                except InvalidSignature:
                    verified = False
                with receiver.lock:
                    if receiver.fail_first > 0:
                        receiver.fail_first -= 1
                        status, answer = 500, b"temporarily broken"
                    elif not verified:
                        status, answer = 400, b"bad signature"
                    else:
                        status, answer = 200, b"thanks"
                        uid = headers.get("Budding-Delivery", "")
                        if uid not in receiver.processed:
                            receiver.processed.append(uid)
                    receiver.requests.append(Received(headers, body, verified, status))
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
