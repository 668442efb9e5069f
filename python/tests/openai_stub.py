"""A local HTTP server answering the OpenAI chat-completions API the way a provider does (a body,
or an error status, optionally late), for tests of the real provider clients (DSPy's,
langchain-openai's). It stands in for the remote service, not for any framework."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class Provider(http.server.ThreadingHTTPServer):
    """Answers /v1/chat/completions with `status` (after `delay` s); records what it was sent."""

    request_queue_size = 256  # listen backlog: many clients connect at once (the async benchmark)

    def __init__(self, content: str = "Paris."):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.status = 200
        self.delay = 0.0
        self.content = content
        self.seen: list[tuple[str, str | None, dict]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/v1"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Provider

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.seen.append((self.path, self.headers.get("Authorization"), body))
        time.sleep(self.server.delay)
        if self.server.status == 200:
            out = {"id": "c1", "object": "chat.completion", "created": 1, "model": body["model"],
                   "choices": [{"index": 0, "finish_reason": "stop",
                                "message": {"role": "assistant", "content": self.server.content}}],
                   "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}
        else:
            out = {"error": {"message": "refused by the test provider", "type": "test", "code": None}}
        data = json.dumps(out).encode()
        try:
            self.send_response(self.server.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up (a timeout test)


@contextmanager
def serving(content: str = "Paris.") -> Iterator[Provider]:
    srv = Provider(content)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
