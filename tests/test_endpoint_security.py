"""The /metrics endpoint exposed beyond loopback: TLS, client certificates and basic auth
from a web configuration file, a storm of scrapers and idle connections, and a real
Prometheus scraping over TLS with a password."""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import bcrypt
import pytest
import yaml
from click.testing import CliRunner
from prometheus_client import CollectorRegistry, make_wsgi_app

import agentstat
from agentstat import _http_server
from agentstat.errors import ConfigError
from agentstat.exporter import MetricsServer, start_metrics_server
from agentstat.ops.cli import check_command
from agentstat.ops.scrape_client import Credentials, ScrapeError, make_fetch
from agentstat.web_config import load_web_config
from tests.certs import Certificates, make_certificates
from tests.helpers import LOOPBACK, free_port, listening_addresses, running, wait_http

USER, PASSWORD = "prometheus", "s3cret-pass"
#: Cost 4 keeps the tests fast; production hashes use 10-12.
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


def write_config(directory: Path, certs: Certificates, **tls: str) -> Path:
    """A web config with TLS (client certificates required unless ``tls`` says
    otherwise) and one basic-auth user; paths relative to the file, as users write them."""
    for source in (certs.ca, certs.server_cert, certs.server_key):
        shutil.copy(source, directory / source.name)
    config = {
        "tls_server_config": {
            "cert_file": certs.server_cert.name,
            "key_file": certs.server_key.name,
            "client_auth_type": "RequireAndVerifyClientCert",
            "client_ca_file": certs.ca.name,
            **tls,
        },
        "basic_auth_users": {USER: HASH},
        "http_server_config": {"headers": {"X-Content-Type-Options": "nosniff"}},
    }
    path = directory / "web.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def server(tmp_path: Path, certs: Certificates) -> Iterator[MetricsServer]:
    started = start_metrics_server(
        port=0,
        registry=CollectorRegistry(),
        set_global=False,
        web_config=str(write_config(tmp_path, certs)),
    )
    try:
        yield started
    finally:
        started.shutdown()


def client_context(certs: Certificates, *, with_certificate: bool = True) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certs.ca))
    if with_certificate:
        context.load_cert_chain(str(certs.client_cert), str(certs.client_key))
    return context


def get(
    url: str, context: ssl.SSLContext | None, auth: tuple[str, str] | None, timeout: float = 5
) -> tuple[int, dict[str, str], str]:
    """(status, headers, body) of a GET; HTTP errors are answers too."""
    request = urllib.request.Request(url)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


# ----------------------------------------------------------------------- the endpoint


def test_tls_client_certificate_and_password_get_the_page(
    server: MetricsServer, certs: Certificates
) -> None:
    """With the CA, a client certificate and the right password, the page is served."""

    @agentstat.agent("secured")
    def secured() -> None:
        pass

    secured()
    assert server.url.startswith("https://")
    status, headers, body = get(server.url, client_context(certs), (USER, PASSWORD))
    assert status == 200
    assert 'gen_ai_agent_name="secured"' in body
    assert headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "auth",
    [(USER, "wrong"), ("someone", PASSWORD), None],
    ids=["wrong-password", "unknown-user", "no-credentials"],
)
def test_a_wrong_password_or_none_is_refused(
    server: MetricsServer, certs: Certificates, auth: tuple[str, str] | None
) -> None:
    """A wrong password, an unknown user and no credentials all get 401 and no metrics."""
    status, headers, body = get(server.url, client_context(certs), auth)
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Basic")
    assert "gen_ai" not in body and "target_info" not in body


def test_a_password_over_72_bytes_is_refused_with_401(
    server: MetricsServer, certs: Certificates
) -> None:
    """bcrypt refuses passwords over 72 bytes; that is a failed login, not a server error."""
    status, _, body = get(server.url, client_context(certs), (USER, "x" * 100))
    assert status == 401 and "gen_ai" not in body


def test_a_client_without_a_certificate_is_refused(
    server: MetricsServer, certs: Certificates
) -> None:
    """RequireAndVerifyClientCert: no client certificate, no TLS session, no page."""
    with pytest.raises((ssl.SSLError, ConnectionError, urllib.error.URLError)):
        get(server.url, client_context(certs, with_certificate=False), (USER, PASSWORD))
    # the refusal ended that connection only
    assert get(server.url, client_context(certs), (USER, PASSWORD))[0] == 200


def test_plain_http_gets_no_page_from_a_tls_endpoint(server: MetricsServer) -> None:
    """Speaking plain HTTP to the TLS port yields no metrics."""
    url = server.url.replace("https://", "http://")
    with pytest.raises((ConnectionError, urllib.error.URLError, OSError)):
        get(url, None, (USER, PASSWORD))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("tls_server_config: [", "is not valid YAML"),
        ("- just a list", "must be a mapping"),
        ("tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n", "cert_file"),
        ("tls_server_config:\n  cert_file: server.crt\n", "needs both cert_file and key_file"),
        ("basic_auth_users:\n  alice: plaintext\n", "basic_auth_users.alice must be a bcrypt"),
        ("bogus_key: 1\n", "unknown key 'bogus_key'"),
        ("http_server_config:\n  http2: true\n", "http2 is not supported"),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
            "  client_auth_type: RequireAndVerifyClientCert\n",
            "needs client_ca_file",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
            "  client_auth_type: RequireAnyClientCert\n",
            "RequireAnyClientCert' is not supported",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
            "  min_version: TLS99\n",
            "min_version 'TLS99'",
        ),
    ],
)
def test_a_bad_web_config_is_one_clear_error_and_nothing_is_served(
    tmp_path: Path, certs: Certificates, content: str, expected: str
) -> None:
    """Every mistake names the file and the setting; the endpoint is then not started,
    never started open."""
    for source in (certs.server_cert, certs.server_key):
        shutil.copy(source, tmp_path / source.name)
    path = tmp_path / "web.yml"
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_web_config(path)
    message = str(caught.value)
    assert expected in message and str(path) in message and "\n" not in message
    port = free_port()
    with pytest.raises(ConfigError):
        start_metrics_server(
            port=port, registry=CollectorRegistry(), set_global=False, web_config=str(path)
        )
    assert listening_addresses(port) == set()


def test_the_web_config_file_is_found_from_pyproject_relative_to_it(
    tmp_path: Path, certs: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``web_config_file`` in ``[tool.agentstat]`` is read relative to pyproject.toml, and
    the endpoint started without arguments serves over TLS."""
    (tmp_path / "secrets").mkdir()
    write_config(tmp_path / "secrets", certs)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.agentstat]\nweb_config_file = "secrets/web.yml"\n'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTSTAT_WEB_CONFIG_FILE", raising=False)
    started = start_metrics_server(port=0, registry=CollectorRegistry(), set_global=False)
    try:
        assert started.url.startswith("https://")
        assert get(started.url, client_context(certs), (USER, PASSWORD))[0] == 200
    finally:
        started.shutdown()


def test_a_missing_web_config_file_is_one_clear_error(tmp_path: Path) -> None:
    """A path that does not exist is named, with the reason."""
    with pytest.raises(ConfigError, match=r"cannot read web config file .*nowhere\.yml"):
        load_web_config(tmp_path / "nowhere.yml")


def test_the_check_client_reads_a_protected_page(
    server: MetricsServer, certs: Certificates
) -> None:
    """``agentstat check``'s client reads the page with the CA, a client certificate and
    the password, and names the URL and the HTTP status when the password is wrong."""
    agentstat.agent("checked")(lambda: None)()
    files = {
        "ca_file": str(certs.ca),
        "cert_file": str(certs.client_cert),
        "key_file": str(certs.client_key),
    }
    page = make_fetch(Credentials(**files, username=USER, password=PASSWORD))(server.url)
    assert 'gen_ai_agent_name="checked"' in page
    wrong = make_fetch(Credentials(**files, username=USER, password="nope"))
    with pytest.raises(ScrapeError, match=r"cannot read https://.*: HTTP 401"):
        wrong(server.url)


def test_agentstat_check_reads_a_protected_page(
    server: MetricsServer, certs: Certificates, tmp_path: Path
) -> None:
    """``agentstat check`` with the CA, a client certificate and a password file judges
    the page; with a wrong password it says HTTP 401 and exits 2 (no verdict)."""
    agentstat.agent("checked")(lambda: None)()
    tls = ["--ca-file", str(certs.ca), "--cert-file", str(certs.client_cert)]
    tls += ["--key-file", str(certs.client_key), "--username", USER, "--interval", "0.2"]
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    result = CliRunner().invoke(
        check_command, [*tls, "--password-file", str(tmp_path / "pw"), server.url]
    )
    assert result.exit_code == 0, result.output
    assert "checked" in result.output
    wrong = CliRunner().invoke(
        check_command, [*tls, server.url], env={"AGENTSTAT_CHECK_PASSWORD": "nope"}
    )
    assert wrong.exit_code == 2
    assert "HTTP 401" in wrong.output


def test_the_check_client_never_follows_a_redirect_with_credentials() -> None:
    """A page that redirects elsewhere is an error naming the target, and the password
    is never sent to the other host."""
    seen: list[str | None] = []

    class Elsewhere(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with contextlib.ExitStack() as stack:
        other = ThreadingHTTPServer(("127.0.0.2", 0), Elsewhere)
        stack.callback(other.server_close)
        stack.callback(other.shutdown)
        threading.Thread(target=other.serve_forever, daemon=True).start()
        target = f"http://127.0.0.2:{other.server_address[1]}/metrics"

        class Redirect(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(302)
                self.send_header("Location", target)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        first = ThreadingHTTPServer((LOOPBACK, 0), Redirect)
        stack.callback(first.server_close)
        stack.callback(first.shutdown)
        threading.Thread(target=first.serve_forever, daemon=True).start()
        fetch = make_fetch(Credentials(username=USER, password=PASSWORD))
        with pytest.raises(ScrapeError, match=r"redirect to .* not followed"):
            fetch(f"http://{LOOPBACK}:{first.server_address[1]}/metrics")
    assert seen == []


# --------------------------------------------------------------- storms and idle sockets


@contextlib.contextmanager
def plain_server(**options: float) -> Iterator[_http_server.MetricsHTTPServer]:
    registry = CollectorRegistry()
    server, _thread = _http_server.serve(make_wsgi_app(registry), LOOPBACK, 0, **options)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_idle_connections_are_closed_after_the_timeout() -> None:
    """A client that connects and says nothing is disconnected after the timeout."""
    with (
        plain_server(timeout=0.5) as server,
        socket.create_connection(server.server_address[:2], timeout=10) as idle,
    ):
        started = time.monotonic()
        assert idle.recv(1024) == b""  # closed by the server
        assert time.monotonic() - started < 5


def test_a_client_trickling_bytes_is_cut_at_the_connection_deadline() -> None:
    """A client sending a byte every 0.3 s never trips the per-read timeout, but the
    whole connection ends at its deadline, so it cannot hold a slot."""
    with (
        plain_server(timeout=2, deadline=1) as server,
        socket.create_connection(server.server_address[:2], timeout=10) as slow,
    ):
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < 6 and not closed:
            try:
                slow.sendall(b"G")
                slow.settimeout(0.3)
                closed = slow.recv(1024) == b""
            except TimeoutError:
                pass
            except OSError:
                closed = True
        assert closed, "the trickling connection was never cut"
        assert time.monotonic() - started < 4


def test_connections_past_the_bound_get_503_and_service_resumes() -> None:
    """With every slot held by idle clients, a scrape gets 503 at once, not a hang; when
    the slots free up, scrapes are served again."""
    with plain_server(max_requests=2, timeout=30) as server:
        url = f"http://{LOOPBACK}:{server.server_address[1]}/metrics"
        address = server.server_address[:2]
        holders = [socket.create_connection(address, timeout=10) for _ in range(2)]
        try:
            time.sleep(0.2)  # both accepted and holding their slots
            started = time.monotonic()
            status, headers, _ = get(url, None, None)
            assert status == 503 and headers["Retry-After"] == "1"
            assert time.monotonic() - started < 3
        finally:
            for holder in holders:
                holder.close()
        deadline = time.monotonic() + 5
        while get(url, None, None)[0] != 200:
            assert time.monotonic() < deadline, "scrapes were not served after slots freed"
            time.sleep(0.05)


def test_fifty_concurrent_scrapers_for_ten_seconds_never_time_out(
    server: MetricsServer, certs: Certificates
) -> None:
    """50 scrapers in a loop for 10 s over TLS with a password: every scrape answers 200
    within its 5 s timeout."""
    context = client_context(certs)
    results: list[int | str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + 10

    def scrape_until_stop() -> None:
        while time.monotonic() < stop_at:
            try:
                outcome: int | str = get(server.url, context, (USER, PASSWORD), timeout=5)[0]
            except Exception as exc:  # a timeout or reset is what this test looks for
                outcome = f"{type(exc).__name__}: {exc}"
            with lock:
                results.append(outcome)

    threads = [threading.Thread(target=scrape_until_stop) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    failures = [r for r in results if r != 200]
    assert not failures, f"{len(failures)} of {len(results)} scrapes failed: {failures[:5]}"
    assert len(results) >= 50


# --------------------------------------------------------------------- real Prometheus


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs Debian's prometheus")
def test_prometheus_scrapes_over_tls_with_basic_auth(
    tmp_path: Path, server: MetricsServer, certs: Certificates
) -> None:
    """A real Prometheus with the CA, a client certificate and the password scrapes the
    page; with a wrong password, or without a client certificate, it is refused."""
    target = f"{LOOPBACK}:{server.port}"
    good_tls = {"ca_file": str(certs.ca), "cert_file": str(certs.client_cert)}
    good_tls["key_file"] = str(certs.client_key)
    jobs = {
        "good": {"tls_config": good_tls, "basic_auth": {"username": USER, "password": PASSWORD}},
        "wrong-password": {
            "tls_config": good_tls,
            "basic_auth": {"username": USER, "password": "nope"},
        },
        "no-client-cert": {
            "tls_config": {"ca_file": str(certs.ca)},
            "basic_auth": {"username": USER, "password": PASSWORD},
        },
    }
    config = {
        "global": {"scrape_interval": "2s", "scrape_timeout": "2s"},
        "scrape_configs": [
            {"job_name": name, "scheme": "https", "static_configs": [{"targets": [target]}], **job}
            for name, job in jobs.items()
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    args = [
        "prometheus",
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address={LOOPBACK}:{port}",
    ]
    log = tmp_path / "prometheus.log"
    with running(args, log=log) as proc:
        base = f"http://{LOOPBACK}:{port}"
        wait_http(f"{base}/-/ready", timeout=30, proc=proc, log=log)
        # Under load one scrape may time out; wait until each target shows its verdict.
        deadline = time.monotonic() + 45
        while True:
            targets = json.loads(wait_http(f"{base}/api/v1/targets"))["data"]["activeTargets"]
            health = {t["labels"]["job"]: (t["health"], t["lastError"]) for t in targets}
            if (
                health.get("good") == ("up", "")
                and health.get("wrong-password", ("",))[0] == "down"
                and "401" in health["wrong-password"][1]
                and health.get("no-client-cert", ("",))[0] == "down"
            ):
                break
            assert time.monotonic() < deadline, f"targets never showed their verdicts: {health}"
            time.sleep(0.5)
    # The client without a certificate differs from "good" only by the certificate.
    assert health["no-client-cert"][1]
