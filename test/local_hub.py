"""A Hugging Face Hub stand-in on localhost: dataset repos served from folders, for HF_ENDPOINT.

Only what huggingface_hub's downloads ask of the hub: a repo's revision (`/api/datasets/<id>/revision/
<rev>`), its recursive tree (`/api/datasets/<id>/tree/<rev>`) and its files (`/datasets/<id>/resolve/
<rev>/<path>`, HEAD and GET, with the commit and ETag headers the hub sends). Every request is logged,
so a test can tell what was downloaded.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"
API = re.compile(r"^/api/datasets/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+)|/tree/(?P<tree>[^/]+)(?P<sub>/.*)?)?$")
RESOLVE = re.compile(r"^/datasets/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class LocalHub:
    def __init__(self, repos: dict[str, Path]):
        self.repos = {repo_id: Path(root) for repo_id, root in repos.items()}
        self.requests: list[str] = []  # "METHOD path"
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self):
                hub._answer(self, body=False)

            def do_GET(self):
                hub._answer(self, body=True)

            def log_message(self, *args):  # quiet: the requests are kept in hub.requests
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="local_hub", daemon=True)

    def downloads(self, repo_id: str) -> list[str]:
        """The repo's files fetched (GET) so far, by path."""
        prefix = f"GET /datasets/{repo_id}/resolve/"
        return [request.removeprefix(prefix).split("/", 1)[1] for request in self.requests
                if request.startswith(prefix)]

    def _files(self, repo_id: str) -> list[Path]:
        root = self.repos[repo_id]
        return sorted(path for path in root.rglob("*") if path.is_file())

    def _answer(self, handler: BaseHTTPRequestHandler, body: bool) -> None:
        path = unquote(urlparse(handler.path).path)
        self.requests.append(f"{handler.command} {path}")
        api, resolve = API.match(path), RESOLVE.match(path)
        repo_id = (api or resolve).group("repo") if (api or resolve) else None
        if repo_id not in self.repos:
            self._send(handler, 404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"}, body)
        elif api and api.group("tree"):
            root = self.repos[repo_id]
            entries = [{"type": "file", "path": str(p.relative_to(root)), "size": p.stat().st_size,
                        "oid": _git_blob_id(p.read_bytes())} for p in self._files(repo_id)]
            self._send(handler, 200, json.dumps(entries).encode(), {"Content-Type": "application/json"}, body)
        elif api:
            root = self.repos[repo_id]
            info = {"id": repo_id, "sha": COMMIT, "private": False, "disabled": False, "gated": False,
                    "siblings": [{"rfilename": str(p.relative_to(root))} for p in self._files(repo_id)]}
            self._send(handler, 200, json.dumps(info).encode(), {"Content-Type": "application/json"}, body)
        else:
            file = self.repos[repo_id] / resolve.group("path")
            if not file.is_file():
                self._send(handler, 404, b'{"error": "Entry not found"}', {"X-Error-Code": "EntryNotFound"}, body)
                return
            data = file.read_bytes()
            self._send(handler, 200, data, {"X-Repo-Commit": COMMIT, "ETag": f'"{_git_blob_id(data)}"',
                                            "Content-Type": "application/octet-stream"}, body)

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict, body: bool) -> None:
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if body:
            handler.wfile.write(data)


@contextmanager
def local_hub(repos: dict[str, Path]):
    hub = LocalHub(repos)
    hub._thread.start()
    try:
        yield hub
    finally:
        hub.server.shutdown()
        hub.server.server_close()
