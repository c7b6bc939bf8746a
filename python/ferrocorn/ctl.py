"""``ferrocorn ctl``: a client for the master's control socket (see docs/operations.md).

It speaks the same protocol as Gunicorn 27's ``gunicornc`` (4-byte big-endian length, then
UTF-8 JSON, each way), so either client drives either server. ``ferrocorn ctl top`` redraws a
table of the workers from the ``show top`` command, which only ferrocorn answers.
"""

import argparse
import json
import os
import socket
import struct
import sys
import time

MAX_MESSAGE = 16 * 1024 * 1024


class CtlError(Exception):
    pass


def default_socket():
    """The server's default ``control_socket``, computed the same way."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isdir(xdg):
        return os.path.join(xdg, "gunicorn.ctl")
    return os.path.join(os.path.expanduser("~"), ".gunicorn", "gunicorn.ctl")


class Client:
    def __init__(self, path, timeout=10.0):
        self.path = path
        self.timeout = timeout
        self.sock = None
        self.next_id = 0

    def __enter__(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        try:
            self.sock.connect(self.path)
        except OSError as e:
            self.sock.close()
            raise CtlError("cannot connect to %s: %s" % (self.path, e.strerror or e)) from None
        return self

    def __exit__(self, *exc):
        self.sock.close()

    def _recv_exactly(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise CtlError("the server closed the connection")
            buf += chunk
        return buf

    def call(self, command):
        self.next_id += 1
        payload = json.dumps({"id": self.next_id, "command": command, "args": []}).encode()
        try:
            self.sock.sendall(struct.pack(">I", len(payload)) + payload)
            (length,) = struct.unpack(">I", self._recv_exactly(4))
            if length > MAX_MESSAGE:
                raise CtlError("answer of %d bytes is too large" % length)
            answer = json.loads(self._recv_exactly(length).decode("utf-8"))
        except (OSError, ValueError) as e:
            raise CtlError("talking to %s: %s" % (self.path, e)) from None
        if answer.get("status") != "ok":
            raise CtlError(answer.get("error", "unknown error"))
        return answer.get("data", {})


def _seconds(s):
    if s is None:
        return "-"
    s = int(s)
    if s >= 86400:
        return "%dd%02dh" % (s // 86400, s % 86400 // 3600)
    if s >= 3600:
        return "%dh%02dm" % (s // 3600, s % 3600 // 60)
    if s >= 60:
        return "%dm%02ds" % (s // 60, s % 60)
    return "%ds" % s


def _mib(b):
    return "-" if b is None else "%.1f" % (b / 1048576.0)


def _num(v):
    return "-" if v is None else str(v)


def format_answer(command, data):
    """Human-readable text for the commands with a table; JSON for the rest."""
    words = command.lower().split()
    if words[:2] in (["show", "workers"], ["show", "all"]):
        rows = data.get("workers", data.get("web_workers", []))
        lines = ["%-8s %-5s %-7s %s" % ("PID", "AGE", "BOOTED", "LAST BEAT")]
        for w in rows:
            beat = w.get("last_heartbeat")
            lines.append("%-8s %-5s %-7s %s" % (w["pid"], w["age"], "yes" if w.get("booted") else "no",
                                               "-" if beat is None else "%.2fs ago" % beat))
            lines.extend(_current(w))
        if "arbiter" in data:
            lines.insert(0, "master pid %s" % data["arbiter"]["pid"])
        lines.append("%d workers" % len(rows))
        return "\n".join(lines)
    if words[:2] == ["show", "stats"]:
        return "\n".join("%-16s %s" % (k + ":", "-" if v is None else v) for k, v in data.items())
    if words[:2] == ["show", "top"]:
        return render_top(data, {}, 0.0)
    if words[:1] == ["help"]:
        cmds = data.get("commands", {})
        width = max((len(c) for c in cmds), default=0)
        return "\n".join("  %-*s  %s" % (width, c, d) for c, d in sorted(cmds.items()))
    return json.dumps(data, indent=2, sort_keys=True)


def render_top(data, previous, interval):
    """The `top` screen. CPU% is the share of one core used since the previous sample."""
    head = "ferrocorn master %s  up %s  workers %d/%s  master RSS %s MiB" % (
        data.get("pid"), _seconds(data.get("uptime")), len(data.get("workers", [])),
        data.get("workers_target"), _mib(data.get("rss_bytes")))
    cols = "%-8s %4s %8s %9s %6s %9s %6s %s" % ("PID", "AGE", "UP", "REQUESTS", "ACTIVE", "RSS MiB", "CPU%",
                                               "STATE")
    lines = [head, "", cols]
    for w in data.get("workers", []):
        cpu = "-"
        before = previous.get(w["pid"])
        if interval > 0 and before is not None and w.get("cpu_seconds") is not None:
            cpu = "%.0f" % max(0.0, 100.0 * (w["cpu_seconds"] - before) / interval)
        if w.get("aborted"):
            state = "timed out"
        elif w.get("retiring"):
            state = "retiring"
        elif w.get("recycling"):
            state = "recycling"
        elif not w.get("booted"):
            state = "booting"
        else:
            state = "ok"
        lines.append("%-8s %4s %8s %9s %6s %9s %6s %s" % (
            w["pid"], w["age"], _seconds(w.get("uptime")), _num(w.get("requests")),
            _num(w.get("in_flight")), _mib(w.get("rss_bytes")), cpu, state))
        lines.extend(_current(w))
    return "\n".join(lines)


def _current(w):
    """One line per request the worker has in the app (oldest first), then how many more."""
    out = []
    for r in sorted(w.get("current") or [], key=lambda r: -(r.get("running") or 0)):
        path = _printable(r.get("path", "")) + ("..." if r.get("path_cut") else "")
        out.append("  %7.1fs  %-7s %s" % (r.get("running") or 0, _printable(r.get("method", "")), path))
    more = w.get("current_unlisted") or 0
    if more:
        out.append("  (+%d more request%s in the app)" % (more, "" if more == 1 else "s"))
    return out


def _printable(text):
    """A client chose these bytes: escape anything that could drive the terminal."""
    return "".join(c if c.isprintable() else "\\x%02x" % ord(c) if ord(c) < 256 else "\\u%04x" % ord(c)
                   for c in str(text))


def top(client, interval, count):
    """Redraws the table every `interval` seconds; `count` screens (0: until interrupted)."""
    previous, last, n = {}, None, 0
    tty = sys.stdout.isatty()
    try:
        while True:
            data = client.call("show top")
            now = time.monotonic()
            screen = render_top(data, previous, 0.0 if last is None else now - last)
            if tty:
                sys.stdout.write("\x1b[H\x1b[2J")
            sys.stdout.write(screen + "\n")
            sys.stdout.flush()
            previous = {w["pid"]: w.get("cpu_seconds") for w in data.get("workers", [])}
            last, n = now, n + 1
            if count and n >= count:
                return 0
            time.sleep(interval)
    except KeyboardInterrupt:
        return 0


def interactive(client, as_json):
    """One command per line until EOF or `quit`; an error is printed and the session goes on."""
    tty = sys.stdin.isatty()
    while True:
        if tty:
            sys.stdout.write("ferrocorn> ")
            sys.stdout.flush()
        line = sys.stdin.readline()
        if not line:
            return 0
        command = line.strip()
        if not command:
            continue
        if command.lower() in ("quit", "exit"):
            return 0
        try:
            data = client.call(command)
        except CtlError as e:
            sys.stderr.write("error: %s\n" % e)
            if "closed the connection" in str(e) or "talking to" in str(e):
                return 1
            continue
        print(json.dumps(data, indent=2) if as_json else format_answer(command, data))
        sys.stdout.flush()


def main(argv):
    parser = argparse.ArgumentParser(
        prog="ferrocorn ctl",
        description="Send a command to a running ferrocorn (or Gunicorn 27) master's control socket.",
        epilog="Commands: show all|workers|stats|config|listeners|top, worker add|remove [N], "
               "worker kill PID, reload, reopen, shutdown [graceful|quick], help; "
               "and 'top' for a live table of the workers.")
    parser.add_argument("-s", "--socket", default=default_socket(),
                        help="control socket path (default: %(default)s)")
    parser.add_argument("-j", "--json", action="store_true", help="print the raw JSON answer")
    parser.add_argument("-n", "--iterations", type=int, default=0,
                        help="top: stop after this many screens (default: until Ctrl-C)")
    parser.add_argument("-d", "--delay", type=float, default=2.0, help="top: seconds between screens")
    parser.add_argument("command", nargs="*",
                        help="the command, e.g. show workers (none: read commands from stdin)")
    args = parser.parse_args(argv)
    command = " ".join(args.command)
    path = os.path.abspath(args.socket)
    try:
        with Client(path) as client:
            if not command:
                return interactive(client, args.json)
            if command.strip().lower() == "top":
                if args.delay <= 0:
                    parser.error("--delay must be positive")
                return top(client, args.delay, max(0, args.iterations))
            data = client.call(command)
    except CtlError as e:
        sys.stderr.write("ferrocorn ctl: %s\n" % e)
        return 1
    print(json.dumps(data, indent=2) if args.json else format_answer(command, data))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
