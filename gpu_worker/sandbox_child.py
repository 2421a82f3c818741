"""The child side of the custom-code sandbox. Run as a script, never imported by the worker.

Order matters: limits and the network namespace come first (while the process has one thread),
then numpy, then the audit hook, and only then the user's code.
"""

import ctypes
import json
import os
import resource
import sys
import traceback

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000

# Audit events that reach outside the sandbox; any of them stops the user's code.
_FORBIDDEN_EVENTS = frozenset(
    {
        "socket.__new__",
        "socket.connect",
        "socket.bind",
        "socket.getaddrinfo",
        "socket.sendto",
        "subprocess.Popen",
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "os.kill",
        "ctypes.dlopen",
        "ctypes.dlsym",
        "ctypes.cdata",
        "os.putenv",
        "os.chdir",
        "os.symlink",
        "os.link",
        "os.rename",
        "os.remove",
        "os.rmdir",
        "shutil.rmtree",
        "pty.spawn",
        "webbrowser.open",
        "urllib.Request",
        "ftplib.connect",
        "http.client.connect",
        "smtplib.connect",
        "mmap.__new__",
    }
)


def _limit(memory_bytes: int, cpu_s: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 20, 256 << 20))


def _isolate_network() -> str:
    """Enter a network namespace with no interfaces but loopback-down; say how the net is cut."""
    libc = ctypes.CDLL(None, use_errno=True)
    for flags in (CLONE_NEWNET, CLONE_NEWUSER | CLONE_NEWNET):
        if libc.unshare(flags) == 0:
            return "namespace"
    return "audit-hook"


def _install_guard(work_dir: str) -> None:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.__file__), *sys.path, work_dir}
    readable = (
        *(os.path.realpath(p) + os.sep for p in roots if p and os.path.isdir(p)),
        "/dev/null",
        "/proc/self/",
        "/sys/devices/system/cpu/",
    )
    writable = os.path.realpath(work_dir) + os.sep

    def guard(event: str, args: tuple[object, ...]) -> None:
        if event in _FORBIDDEN_EVENTS:
            raise PermissionError(f"sandbox: {event} is not allowed in custom methods")
        if event == "open" and args and isinstance(args[0], str | bytes):
            path = os.path.realpath(os.fsdecode(args[0]))
            mode = args[1] if len(args) > 1 and isinstance(args[1], str) else "r"
            writing = any(c in mode for c in "wax+")
            if writing and not path.startswith(writable):
                raise PermissionError(f"sandbox: writing {path} is not allowed")
            if not writing and not (path + os.sep).startswith(readable) and not path.startswith(readable):
                raise PermissionError(f"sandbox: reading {path} is not allowed")

    sys.addaudithook(guard)


def main() -> int:
    work_dir = sys.argv[1]
    with open(os.path.join(work_dir, "job.json")) as f:
        job = json.load(f)
    _limit(int(job["memory_bytes"]), int(job["cpu_s"]))
    isolation = _isolate_network()
    import numpy as np  # after unshare: importing numpy may start threads

    inputs = {k: np.load(os.path.join(work_dir, f"{k}.npy")) for k in job["arrays"]}
    with open(os.path.join(work_dir, "method.py")) as f:
        source = f.read()
    _install_guard(work_dir)
    try:
        namespace: dict[str, object] = {"__name__": "aar_custom_method"}
        exec(compile(source, "custom_method.py", "exec"), namespace)
        run = namespace.get("run")
        if not callable(run):
            raise TypeError("custom method must define run(inputs, n_classes, seed)")
        out = np.asarray(run(inputs, int(job["n_classes"]), int(job["seed"])))
    except BaseException:
        with open(os.path.join(work_dir, "error.txt"), "w") as f:
            f.write(traceback.format_exc(limit=-20))
        return 3
    np.save(os.path.join(work_dir, "out.npy"), out, allow_pickle=False)
    with open(os.path.join(work_dir, "isolation.txt"), "w") as f:
        f.write(isolation)
    return 0


if __name__ == "__main__":
    sys.exit(main())
