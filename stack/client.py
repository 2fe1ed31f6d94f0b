"""A small REST client for the stack's API server, logged in as one SimpleAuthManager user.

Tests and the demo act as real people (director, staff) through the public API, so the
client keeps one JWT per user, taken from `POST /auth/token` (201 {"access_token": ...}).
"""

from __future__ import annotations

from typing import Any

import httpx


class ApiClient:
    """`get/post/patch/delete` return `(status_code, parsed JSON or text)`.

    Paths starting with `/` are taken from the server root (`/api/v2/dags`, `/auth/token`);
    other paths are relative to `/api/v2/` (`dags/my_dag`).
    """

    def __init__(self, base_url: str, username: str, password: str, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self._password = password
        self._token: str | None = None
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def __repr__(self) -> str:
        return f"ApiClient({self.base_url!r}, user={self.username!r})"

    @property
    def token(self) -> str:
        """The cached JWT (fetched on first use)."""
        if self._token is None:
            body = {"username": self.username, "password": self._password}
            resp = self._http.post("/auth/token", json=body)
            if resp.status_code not in (200, 201):
                raise PermissionError(
                    f"login as {self.username!r} failed: HTTP {resp.status_code} {resp.text}"
                )
            self._token = resp.json()["access_token"]
        return self._token

    @staticmethod
    def _url(path: str) -> str:
        return path if path.startswith("/") else f"/api/v2/{path}"

    def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        """Send with the bearer token; on 401 log in again once (token expired or stack restarted)."""
        for attempt in (1, 2):
            resp = self._http.request(
                method, self._url(path), headers={"Authorization": f"Bearer {self.token}"}, **kwargs
            )
            if resp.status_code == 401 and attempt == 1:
                self._token = None
                continue
            break
        try:
            body = resp.json()
        except ValueError:
            body = resp.text
        return resp.status_code, body

    def get(self, path: str, **params: Any) -> tuple[int, Any]:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, json: Any = None) -> tuple[int, Any]:
        return self.request("POST", path, json=json)

    def patch(self, path: str, json: Any = None) -> tuple[int, Any]:
        return self.request("PATCH", path, json=json)

    def put(self, path: str, json: Any = None) -> tuple[int, Any]:
        return self.request("PUT", path, json=json)

    def delete(self, path: str) -> tuple[int, Any]:
        return self.request("DELETE", path)

    def close(self) -> None:
        self._http.close()
