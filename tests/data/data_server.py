"""A threaded HTTP server on 127.0.0.1 with the misbehaviours real image hosts show."""

from __future__ import annotations

import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class CoverServer:
    """Serves `files` (path -> bytes) plus /slow, /flaky, /truncated, /redirect, /html, /fake, /missing."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.hits: Counter = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                path = self.path.split("?")[0]
                server.hits[path] += 1
                n = server.hits[path]
                jpeg = next(iter(server.files.values()))
                if path.startswith("/slow"):
                    time.sleep(1.5)
                    return self._send(200, "image/jpeg", jpeg)
                if path.startswith("/flaky") and n == 1:
                    return self._send(500, "text/plain", b"oops")
                if path.startswith("/flaky"):
                    return self._send(200, "image/jpeg", jpeg)
                if path.startswith("/truncated"):
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.send_header("Content-Length", str(len(jpeg)))
                    self.end_headers()
                    self.wfile.write(jpeg[: len(jpeg) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if path.startswith("/redirect"):
                    self.send_response(302)
                    self.send_header("Location", "/" + path.rsplit("/", 1)[-1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if path.startswith("/html"):
                    return self._send(200, "text/html", b"<html>login page</html>")
                if path.startswith("/fake"):
                    return self._send(200, "image/jpeg", b"<html>not really an image</html>")
                body = server.files.get(path)
                if body is None:
                    return self._send(404, "text/plain", b"not found")
                self._send(200, "image/jpeg", body)

            def _send(self, code, ctype, body):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
