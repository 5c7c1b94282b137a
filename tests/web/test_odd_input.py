"""Odd requests to the real app over HTTP: every one gets a 4xx with a reason, never a 5xx.

Requests are written byte by byte on a loopback socket, so nothing between
the test and the server tidies them up: bodies that cannot be parsed, lying
Content-Lengths, chunked bodies, ids with newlines and NULs, odd methods,
query strings, cookies and headers. Each case names the answer a client
must get; the CSRF check comes before any parsing, so a request without a
valid token is ``csrf_failed`` whatever its body looks like.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator, Sequence
from urllib.parse import urlsplit

import attrs
import pytest

from connectors_core.web._security import SESSION_COOKIE
from tests.harness import TENANT_HEADER, Harness

KEY_URL = "/api/integrations/acme-key/connect"
DISCONNECT_URL = "/api/integrations/evencio/disconnect"
STATUS_URL = "/api/integrations/acme-key/status"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
GOOD_KEY = "sk_odd_0123456789"


@attrs.frozen
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def reason(self) -> str | None:
        try:
            data = json.loads(self.body)
        except ValueError:
            return None
        return data.get("error") if isinstance(data, dict) else None


@attrs.frozen
class Case:
    """One odd request and the answer it must get."""

    name: str
    method: str = "POST"
    target: str = KEY_URL
    body: bytes = b""
    content_type: str | None = None
    token: bool = True  # send the session's X-CSRF-Token header
    headers: Sequence[tuple[str, str]] = ()
    cookie: str | None = None  # None: the session cookie
    status: int = 400
    reason: str | None = "invalid_request"


class Raw:
    """A raw HTTP/1.1 client for the harness's app, with one browser session."""

    def __init__(self, harness: Harness) -> None:
        with harness.browser() as browser:
            self.token = harness.csrf(browser)
            self.session = browser.cookies[SESSION_COOKIE]
        parts = urlsplit(harness.origin)
        assert parts.hostname is not None
        assert parts.port is not None
        self.address = (parts.hostname, parts.port)
        self.origin = harness.origin

    def head(
        self,
        method: str,
        target: str,
        *,
        token: bool = True,
        cookie: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> bytes:
        lines = [
            f"{method} {target} HTTP/1.1",
            f"Host: {self.address[0]}:{self.address[1]}",
            "Connection: close",
        ]
        named = {name.lower() for name, _ in headers}
        defaults = {TENANT_HEADER: "tenant-odd", "Accept": JSON, "Origin": self.origin}
        lines += [
            f"{name}: {value}" for name, value in defaults.items() if name.lower() not in named
        ]
        if token:
            lines.append(f"X-CSRF-Token: {self.token}")
        lines.append(f"Cookie: {SESSION_COOKIE}={self.session}" if cookie is None else cookie)
        lines += [f"{name}: {value}" for name, value in headers]
        return "\r\n".join(lines).encode("latin-1") + b"\r\n"

    def send(self, data: bytes, *, half_close: bool = False) -> Answer | None:
        """Send raw bytes; the answer, or None when the server closed without one."""
        with socket.create_connection(self.address, timeout=10) as sock:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
        if not received:
            return None
        head, _, body = received.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding") == "chunked":
            body = dechunk(body)
        return Answer(int(status_line.split()[1]), headers, body)

    def case(self, case: Case) -> Answer:
        headers = list(case.headers)
        if case.content_type is not None:
            headers.append(("Content-Type", case.content_type))
        if case.body or case.method == "POST":
            headers.append(("Content-Length", str(len(case.body))))
        data = self.head(
            case.method, case.target, token=case.token, cookie=case.cookie, headers=headers
        )
        answer = self.send(data + b"\r\n" + case.body)
        assert answer is not None, f"{case.name}: no answer"
        return answer


def dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size, _, rest = body.partition(b"\r\n")
        length = int(size.split(b";")[0], 16)
        if length == 0:
            break
        out, body = out + rest[:length], rest[length + 2 :]
    return out


def chunked(body: bytes, size: int = 1000) -> bytes:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


@pytest.fixture
def raw(harness: Harness) -> Raw:
    return Raw(harness)


@pytest.fixture
def server_errors() -> Iterator[list[logging.LogRecord]]:
    """Every error uvicorn logs (an exception in the app is one, even after a response)."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(logging.ERROR)
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def check(raw: Raw, cases: Sequence[Case]) -> None:
    """Send every case; fail once, listing every answer that was not the expected one."""
    wrong = []
    for case in cases:
        answer = raw.case(case)
        assert answer.status < 500, f"{case.name}: {answer.status} {answer.body[:300]!r}"
        got = (answer.status, answer.reason)
        if got != (case.status, case.reason):
            wrong.append(f"{case.name}: expected {(case.status, case.reason)}, got {got}")
        elif answer.status >= 400:
            assert answer.headers["content-type"] == "application/json", case.name
            assert isinstance(json.loads(answer.body)["message"], str), case.name
    assert not wrong, "\n".join(wrong)


def wrong(token: str) -> str:
    """The token with its first character changed (always to another one)."""
    return ("1" if token[0] == "0" else "0") + token[1:]


def fields(count: int) -> bytes:
    return "&".join(f"field{i}=x" for i in range(count)).encode()


# --- bodies the routes cannot parse, with a valid CSRF header -----------------------

UNPARSABLE = [
    Case("21 form fields (the old cap)", body=fields(21), content_type=FORM),
    Case("65 form fields", body=fields(65), content_type=FORM),
    Case("4000 empty form fields", body=b"&" * 4000, content_type=FORM),
    Case("a form field without a value", body=b"junk", content_type=FORM),
    Case(
        "a duplicated form field",
        body=b"api_key=one-key-0123&api_key=two-key-0123",
        content_type=FORM,
    ),
    Case("the JSON name in a form", body=f"apiKey={GOOD_KEY}".encode(), content_type=FORM),
    Case(
        "raw bytes that are not UTF-8 in a form",
        body=b"api_key=\xff\xfe0123456789",
        content_type=FORM,
    ),
    Case(
        "percent-encoded bytes that are not UTF-8",
        body=b"api_key=%FF%FE0123456789",
        content_type=FORM,
    ),
    Case("JSON nested 5000 deep", body=b"[" * 5000, content_type=JSON),
    Case("JSON objects nested 1600 deep", body=b'{"a":' * 1600, content_type=JSON),
    Case("JSON that is not UTF-8", body=b'{"apiKey": "\xff\xfe0123456789"}', content_type=JSON),
    Case("JSON with a byte order mark", body=b'\xef\xbb\xbf{"apiKey": "k"}', content_type=JSON),
    Case("JSON that is not JSON", body=b"{apiKey: 1", content_type=JSON),
    *(
        Case(f"a JSON top level that is {kind}", body=body, content_type=JSON)
        for kind, body in [
            ("an array", b"[]"),
            ("a string", b'"sk_odd_0123456789"'),
            ("a number", b"12345678"),
            ("null", b"null"),
            ("true", b"true"),
        ]
    ),
    *(
        Case(f"a JSON apiKey that is {kind}", body=b'{"apiKey": %s}' % value, content_type=JSON)
        for kind, value in [
            ("a number", b"12345678901"),
            ("null", b"null"),
            ("an array", b'["sk_odd_0123456789"]'),
            ("an object", b'{"value": "sk_odd_0123456789"}'),
            ("a boolean", b"true"),
            ("NaN", b"NaN"),
            ("a lone surrogate", b'"\\ud800-0123456789"'),
        ]
    ),
    Case(
        "a duplicated JSON key",
        body=b'{"apiKey": "one-key-0123", "apiKey": "two-key-0123"}',
        content_type=JSON,
    ),
    Case("the form name in JSON", body=b'{"api_key": "sk_odd_0123456789"}', content_type=JSON),
    Case(
        "a field disconnect does not take",
        target=DISCONNECT_URL,
        body=b'{"apiKey": "x"}',
        content_type=JSON,
    ),
    Case(
        "a NUL inside the key",
        body=b'{"apiKey": "sk_odd_\\u0000_0123"}',
        content_type=JSON,
        status=422,
        reason="invalid_api_key",
    ),
    Case(
        "a body without a Content-Type",
        body=f"api_key={GOOD_KEY}".encode(),
        status=415,
        reason="unsupported_media_type",
    ),
    *(
        Case(
            f"a body sent as {kind}",
            body=b"api_key=x",
            content_type=kind,
            status=415,
            reason="unsupported_media_type",
        )
        for kind in [
            "text/plain",
            "multipart/form-data; boundary=x",
            "application/xml",
            "application/json-patch+json",
            "application/x-www-form-urlencoded; charset=latin-1",
            "application/json; charset=utf-16",
        ]
    ),
    Case(
        "a body over 8 KiB",
        body=b"api_key=" + b"k" * 9000,
        content_type=FORM,
        status=413,
        reason="payload_too_large",
    ),
]


def test_bodies_that_cannot_be_parsed_are_4xx_with_a_reason(
    raw: Raw, server_errors: list[logging.LogRecord]
) -> None:
    check(raw, UNPARSABLE)
    assert server_errors == []


def test_a_form_with_a_valid_token_but_an_unparsable_rest_is_invalid_request(raw: Raw) -> None:
    token = f"csrf_token={raw.token}".encode()
    check(
        raw,
        [
            Case("65 fields", body=token + b"&" + fields(64), content_type=FORM, token=False),
            Case(
                "a duplicated field",
                body=token + b"&api_key=a&api_key=b",
                content_type=FORM,
                token=False,
            ),
            Case(
                "not UTF-8",
                body=token + b"&api_key=%FF%FF0123456789",
                content_type=FORM,
                token=False,
            ),
            Case("the token twice", body=token + b"&" + token, content_type=FORM, token=False),
        ],
    )


# --- CSRF first: without a valid token, the body is never the answer ------------------


def test_without_a_valid_token_every_body_is_csrf_failed(
    raw: Raw, server_errors: list[logging.LogRecord]
) -> None:
    untokened = [
        attrs.evolve(
            case, name=f"no token, {case.name}", token=False, status=403, reason="csrf_failed"
        )
        for case in UNPARSABLE
    ]
    check(
        raw,
        [
            *untokened,
            Case("no token, an empty body", token=False, status=403, reason="csrf_failed"),
            Case(
                "no token, a JSON body carrying one",
                body=json.dumps({"apiKey": GOOD_KEY, "csrf_token": raw.token}).encode(),
                content_type=JSON,
                token=False,
                status=403,
                reason="csrf_failed",
            ),
            Case(
                "a wrong token in the form",
                body=f"csrf_token={wrong(raw.token)}&api_key={GOOD_KEY}".encode(),
                content_type=FORM,
                token=False,
                status=403,
                reason="csrf_failed",
            ),
            Case(
                "the form token in a body over 8 KiB",
                body=f"csrf_token={raw.token}&api_key=".encode() + b"k" * 9000,
                content_type=FORM,
                token=False,
                status=403,
                reason="csrf_failed",
            ),
        ],
    )
    assert server_errors == []
    with_header = [
        ("a cross-site request", [("Sec-Fetch-Site", "cross-site")], None),
        ("a same-site request", [("Sec-Fetch-Site", "same-site")], None),
        ("another origin", [("Origin", "https://evil.example.com")], None),
        ("a wrong token", [("X-CSRF-Token", "0" * 48)], None),
        ("no session cookie", [], "X-No-Cookie: 1"),
        ("another session's cookie", [], f"Cookie: {SESSION_COOKIE}={'s' * 43}"),
    ]
    cases = []
    for label, headers, cookie in with_header:
        wrong_token = any(name == "X-CSRF-Token" for name, _ in headers)
        for body, kind in [(b"[" * 5000, JSON), (fields(65), FORM), (b"k" * 9000, FORM)]:
            cases.append(
                Case(
                    f"{label}, {len(body)} bytes of {kind}",
                    body=body,
                    content_type=kind,
                    token=not wrong_token,
                    headers=headers,
                    cookie=cookie,
                    status=403,
                    reason="csrf_failed",
                )
            )
    check(raw, cases)


def test_two_csrf_headers_are_csrf_failed(raw: Raw) -> None:
    check(
        raw,
        [
            Case(
                "the token twice",
                body=json.dumps({"apiKey": GOOD_KEY}).encode(),
                content_type=JSON,
                headers=[("X-CSRF-Token", raw.token)],
                status=403,
                reason="csrf_failed",
            )
        ],
    )


# --- bodies whose framing is odd ----------------------------------------------------


def test_a_chunked_body_over_the_cap_is_refused_and_a_small_one_accepted(raw: Raw) -> None:
    def post(body: bytes, *, token: bool) -> Answer:
        head = raw.head(
            "POST",
            KEY_URL,
            token=token,
            headers=[("Content-Type", JSON), ("Transfer-Encoding", "chunked")],
        )
        answer = raw.send(head + b"\r\n" + chunked(body))
        assert answer is not None
        return answer

    big = json.dumps({"apiKey": "k" * 9000}).encode()
    refused = post(big, token=True)
    assert (refused.status, refused.reason) == (413, "payload_too_large")
    assert post(big, token=False).reason == "csrf_failed"
    small = post(json.dumps({"apiKey": GOOD_KEY}).encode(), token=True)
    assert small.status == 200
    assert json.loads(small.body)["connected"] is True


def test_a_content_length_that_lies_is_never_a_server_error(
    raw: Raw, server_errors: list[logging.LogRecord]
) -> None:
    body = json.dumps({"apiKey": GOOD_KEY}).encode()
    # Shorter than the body: the app reads what was declared, which is not JSON.
    head = raw.head("POST", KEY_URL, headers=[("Content-Type", JSON), ("Content-Length", "10")])
    shorter = raw.send(head + b"\r\n" + body)
    assert shorter is not None
    assert (shorter.status, shorter.reason) == (400, "invalid_request")
    # Longer than the body, and then the client stops sending.
    head = raw.head("POST", KEY_URL, headers=[("Content-Type", JSON), ("Content-Length", "500")])
    longer = raw.send(head + b"\r\n" + body, half_close=True)
    assert longer is None or (400 <= longer.status < 500), longer
    # Over the cap, declared: refused before a byte of the body is read.
    head = raw.head("POST", KEY_URL, headers=[("Content-Type", JSON), ("Content-Length", "9000")])
    declared = raw.send(head + b"\r\n", half_close=True)
    assert declared is not None
    assert (declared.status, declared.reason) == (413, "payload_too_large")
    # The server is fine afterwards.
    status = raw.case(Case("status", method="GET", target=STATUS_URL, status=200, reason=None))
    assert status.status == 200
    assert server_errors == []


# --- odd paths, ids and methods -------------------------------------------------------

ODD_IDS = [
    "evencio%0A",
    "evencio%0D%0ASet-Cookie:%20x=y",
    "evencio%00",
    "evencio%09",
    "evencio%20",
    "%20evencio",
    "EVENCIO",
    "%C3%A9vencio",
    "%FF%FE",
    "%3Cscript%3E",
    "%2e%2e",
    "..",
    "evencio%252F",
    "x" * 3000,
    "acme-key%0A",
]


def test_odd_ids_are_unknown_connectors(raw: Raw, server_errors: list[logging.LogRecord]) -> None:
    cases = [
        Case(
            f"{method} {action} of {connector_id[:30]!r}",
            method=method,
            target=f"/api/integrations/{connector_id}/{action}",
            status=404,
            reason="unknown_connector",
        )
        for connector_id in ODD_IDS
        for method, action in [
            ("GET", "status"),
            ("GET", "connect"),
            ("GET", "callback?state=x&code=y"),
            ("POST", "connect"),
            ("POST", "disconnect"),
        ]
    ]
    check(raw, cases)
    assert server_errors == []


def test_paths_no_route_serves_are_a_json_404(raw: Raw) -> None:
    check(
        raw,
        [
            Case(f"GET {target}", method="GET", target=target, status=404, reason=reason)
            for target, reason in [
                ("/api/integrations/evencio/status%0A", "not_found"),
                ("/api/integrations/evencio/status%00", "not_found"),
                ("/api/integrations/evencio/status/extra", "not_found"),
                ("/api/integrations/evencio/nothing-here", "not_found"),
                ("/api/integrations/evencio", "not_found"),
                ("/api/integrations//status", "not_found"),
                ("/api/integrations/csrf/status/extra", "not_found"),
                ("/api/integrations/csrf/status", "unknown_connector"),
                ("/api/integrations/nope", "unknown_connector"),
                ("/api/integrations/nope/status/extra", "unknown_connector"),
                ("/api/integrations/csrf%0A", "unknown_connector"),
                ("/api/integrations/openapi.json%0A", "unknown_connector"),
            ]
        ],
    )


def test_a_wrong_method_is_a_json_405_naming_every_allowed_method(raw: Raw) -> None:
    allowed = {
        KEY_URL: "GET, HEAD, POST",
        STATUS_URL: "GET, HEAD",
        DISCONNECT_URL: "GET, HEAD, POST",
        "/api/integrations/evencio/callback": "GET, HEAD",
        "/api/integrations/evencio/connections/conn_1/status": "GET, HEAD",
        "/api/integrations/evencio/connections/conn_1/rename": "POST",
        "/api/integrations/csrf": "GET, HEAD",
        "/api/integrations/openapi.json": "GET, HEAD",
    }
    wrong = []
    for target, allow in allowed.items():
        for method in ("OPTIONS", "DELETE", "PUT", "PATCH", "TRACE", "FROB", "POST", "GET"):
            if method in allow.split(", "):
                continue
            answer = raw.case(Case(method, method=method, target=target))
            got = (answer.status, answer.reason, answer.headers.get("allow"))
            if got != (405, "method_not_allowed", allow):
                wrong.append(f"{method} {target}: {got}")
    assert not wrong, "\n".join(wrong)


def test_head_is_answered_like_get_without_a_body(raw: Raw) -> None:
    answer = raw.send(raw.head("HEAD", STATUS_URL) + b"\r\n")
    assert answer is not None
    assert answer.status == 200
    assert answer.body == b""


# --- odd query strings, cookies and headers --------------------------------------------

NOT_CONNECTED = {"connected": False, "error": "not_connected"}


def test_odd_query_strings_are_ignored_where_no_query_is_read(raw: Raw) -> None:
    for query in ["%FF=%FE", "a=1&a=2", "x=" + "q" * 6000, "%00=%00", "&&&", "=", "a=%", "%%"]:
        answer = raw.case(Case(query[:20], method="GET", target=f"{STATUS_URL}?{query}"))
        assert answer.status == 200, (query[:20], answer)
        assert json.loads(answer.body) == NOT_CONNECTED


def test_odd_callback_queries_end_on_the_page_with_a_reason(raw: Raw) -> None:
    for query in [
        "state=%00&code=%FF",
        "state=a&state=b&code=c",
        "state=" + "s" * 6000,
        "error=%0D%0ASet-Cookie:%20x=y&state=z",
        "code=only",
        "",
    ]:
        target = f"/api/integrations/evencio/callback?{query}"
        answer = raw.case(Case(query[:20], method="GET", target=target))
        assert answer.status == 303, (query[:20], answer)
        assert answer.headers["location"] == "/integrations?connector=evencio&error=invalid_state"
        assert "set-cookie" not in answer.headers


def test_odd_cookies_are_no_session(raw: Raw) -> None:
    odd = [
        f"Cookie: {SESSION_COOKIE}={'s' * 300}",
        f"Cookie: {SESSION_COOKIE}=\xe9t\xe9-{'s' * 30}",
        "Cookie: ;;;==;; =",
        "Cookie: " + "; ".join(f"c{i}=v" for i in range(200)),
        f'Cookie: {SESSION_COOKIE}="{"q" * 30}"',
    ]
    for cookie in odd:
        status = raw.case(Case(cookie[:30], method="GET", target=STATUS_URL, cookie=cookie))
        assert (status.status, json.loads(status.body)) == (200, NOT_CONNECTED), cookie[:30]
    check(
        raw,
        [
            Case(
                f"disconnect with {cookie[:30]}",
                target=DISCONNECT_URL,
                cookie=cookie,
                status=403,
                reason="csrf_failed",
            )
            for cookie in odd
        ],
    )


def test_odd_headers(raw: Raw) -> None:
    check(
        raw,
        [
            Case(
                "no tenant",
                method="GET",
                target=STATUS_URL,
                headers=[(TENANT_HEADER, "")],
                status=401,
                reason="unauthenticated",
            ),
            Case(
                "Sec-Fetch-Site garbage",
                method="GET",
                target=STATUS_URL,
                headers=[("Sec-Fetch-Site", "\xff\xfe")],
                status=200,
                reason="not_connected",  # the status JSON
            ),
            Case(
                "Accept garbage",
                method="GET",
                target=STATUS_URL,
                headers=[("Accept", ";;q=x,*/*;q=-1")],
                status=200,
                reason="not_connected",  # the status JSON
            ),
            Case(
                "a GET with a body",
                method="GET",
                target=STATUS_URL,
                body=b"[" * 5000,
                content_type=JSON,
                status=200,
                reason="not_connected",  # the status JSON
            ),
            Case(
                "Origin null with the header token",
                target="/api/integrations/acme-plain/connect",
                headers=[("Origin", "null")],
                status=200,
                reason=None,
            ),
            Case(
                "Origin with odd bytes",
                headers=[("Origin", "http://\xff\xfe")],
                status=403,
                reason="csrf_failed",
            ),
            Case(
                "a Content-Type of only parameters",
                body=b"api_key=x",
                content_type="; charset=utf-8",
                status=415,
                reason="unsupported_media_type",
            ),
        ],
    )
