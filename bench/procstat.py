"""What a server costs, read from /proc: CPU time and proportional memory of a process tree.

CPU is utime + stime of every live process in the tree (each process's own figure already
includes all of its threads). Memory is PSS, which splits pages shared between a pre-fork master
and its workers fairly, so a tree's PSS sums to what it really occupies.
"""
import os

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _children_map():
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces: split after the last ')'.
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def tree(root):
    """The pids of `root` and all of its descendants, root first."""
    children = _children_map()
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, ()))
    return pids


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / CLK_TCK


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory(root):
    """PSS of the whole tree, and of each worker (the children; the root if it has none)."""
    pids = tree(root)
    per_pid = {pid: pss_kib(pid) for pid in pids}
    workers = [pid for pid in pids if pid != root] or [root]
    return {
        "tree_pss_kib": sum(per_pid.values()),
        "processes": len(pids),
        "worker_pss_kib": [per_pid[pid] for pid in workers],
    }


def cpu_busy(cpu):
    """Clock ticks one CPU spent running tasks since boot (user, nice, system) plus steal (time
    the hypervisor gave to someone else), from /proc/stat. Interrupt and softirq time is left
    out: on loopback it is mostly the benchmark's own packets, charged to no process."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                user, nice, system, _idle, _iowait, _irq, _softirq, steal = (
                    int(x) for x in line.split()[1:9])
                return user + nice + system + steal
    return 0
