"""`/healthz` and `/readyz` on the metrics listener (`--metrics-bind`), for Kubernetes probes."""

import signal

import pytest

import harness

pytestmark = pytest.mark.beyond_gunicorn


def probe(port, path):
    r = harness.get(("127.0.0.1", port), path)
    return r.status, r.body.decode()


def test_health_and_readiness_through_a_graceful_stop(serve, tmp_path):
    port = harness.free_port()
    srv = serve("misc:sleep", "-w", "1", "--metrics-bind", "127.0.0.1:%d" % port,
                "--graceful-timeout", "20", extra_env=harness.marker_env(tmp_path))
    harness.wait_for(lambda: probe(port, "/readyz")[0] == 200, 15, what="ready")
    assert probe(port, "/healthz") == (200, "ok\n")
    assert probe(port, "/readyz") == (200, "ready\n")
    assert probe(port, "/readyz?verbose=1")[0] == 200
    assert probe(port, "/nope")[0] == 404
    t, result = harness.in_flight(srv, "/sleep/3")
    harness.wait_marker(tmp_path, "sleeping")
    srv.signal(signal.SIGTERM)
    # Draining: still alive, no longer ready.
    harness.wait_for(lambda: probe(port, "/readyz")[0] == 503, 10, interval=0.1, what="not ready")
    assert probe(port, "/readyz") == (503, "not ready: stopping\n")
    assert probe(port, "/healthz") == (200, "ok\n")
    t.join(30)
    assert result.get("r") is not None and result["r"].status == 200, result
    assert srv.wait_exit() == 0
