"""worker_connections: a worker at its limit takes the next connection as soon as one closes.

The close of a connection used to wake only one of the two tasks waiting for it (the accept
loop and the worker's main loop), so a worker at its limit could leave a connection in the
listen backlog until it stopped."""

import harness


def test_a_full_worker_accepts_again_when_a_connection_closes(serve):
    # One worker, one connection at a time; idle keep-alive connections close after 1 s.
    srv = serve("echo:app", "-w", "1", "--worker-connections", "1", "--keep-alive", "1")
    # Each round fills the one slot with a keep-alive connection, then queues a second
    # connection behind it: it must be answered once the first one's keep-alive runs out. The
    # race this guards against lost about every other round, so several rounds are run.
    for _ in range(5):
        with harness.connect(srv.addr) as first:
            first.sendall(b"GET /first HTTP/1.1\r\nHost: t\r\n\r\n")
            assert first.read_response().status == 200
            with harness.connect(srv.addr) as second:
                second.sendall(b"GET /second HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                assert second.read_response(timeout=6).status == 200
