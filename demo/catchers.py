"""Stand-ins for the outside world the clinic talks to, each run as its own
process: an SMTP server (aiosmtpd) and an SMS provider (HTTP). Every message
received is appended as one JSON line to a file, for the demo's report.

    python -m demo.catchers smtp --port 1025 --out var/demo/mail.jsonl
    python -m demo.catchers sms --port 9025 --out var/demo/sms.jsonl
"""
from __future__ import annotations

import argparse
import email
import json
import signal
import sys
import threading
import time
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_lock = threading.Lock()


def _append(path: str, record: dict) -> None:
    with _lock, open(path, "a") as out:
        out.write(json.dumps(record) + "\n")


def run_smtp(port: int, out: str) -> None:
    from aiosmtpd.controller import Controller

    class Catcher:
        async def handle_DATA(self, server, session, envelope):
            message = email.message_from_bytes(envelope.content, policy=policy.default)
            body = message.get_body(preferencelist=("plain", "html"))
            _append(out, {"to": list(envelope.rcpt_tos), "subject": str(message["Subject"] or ""),
                          "body": body.get_content() if body else "", "at": time.time()})
            return "250 Message accepted for delivery"

    controller = Controller(Catcher(), hostname="127.0.0.1", port=port)
    controller.start()
    _wait_for_signal()
    controller.stop()


def run_sms(port: int, out: str) -> None:
    class Provider(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                payload = json.loads(raw or b"{}")
            except ValueError:
                payload = {"raw": raw.decode("utf-8", "replace")}
            _append(out, {"path": self.path, "payload": payload, "at": time.time()})
            answer = json.dumps({"id": f"sms-{time.time_ns()}", "status": "queued"}).encode()
            self.send_response(202)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):  # keep the demo's terminal quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Provider)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _wait_for_signal()
    server.shutdown()


def _wait_for_signal() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("ready", flush=True)
    while not stop.is_set():
        stop.wait(0.5)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.catchers")
    parser.add_argument("kind", choices=("smtp", "sms"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    open(args.out, "a").close()
    (run_smtp if args.kind == "smtp" else run_sms)(args.port, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
