# SPDX-License-Identifier: MIT
"""test_dynshm.py - the Python binding against the built library, with real
processes: a supervisor creates a segment, a forked worker attaches it by
handle and answers through it, a worker killed with SIGKILL is reported and
its references reclaimed, errors carry message, detail and hint, and nothing
is left in /dev/shm.  Run by test/python-binding.sh in `make check`."""
import os
import signal
import sys
import tempfile

import dynshm


def objects(handles):
    """Names in /dev/shm of these handles (posix names end with the handle)."""
    ends = tuple("%016x" % h for h in handles)
    return [n for n in os.listdir("/dev/shm") if n.startswith("dynshm.") and n.endswith(ends)]


def main():
    checks = failures = 0

    def check(what, ok):
        nonlocal checks, failures
        checks += 1
        if not ok:
            failures += 1
        print(("ok   - " if ok else "FAIL - ") + what)

    check("version is a dotted triple", len(dynshm.version().split(".")) == 3)
    with tempfile.TemporaryDirectory(prefix="dynshm-py.") as d:
        os.chmod(d, 0o700)
        dynshm.supervisor_start(d)
        seg = dynshm.create(1 << 16)
        ours = [seg.handle, dynshm.control_handle()]
        seg.buffer[:5] = b"hello"
        check("a segment is a writable buffer of its size",
              len(seg.buffer) >= 1 << 16 and bytes(seg.buffer[:5]) == b"hello")

        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                dynshm.worker_init_after_fork()
                mine = dynshm.attach(seg.handle)
                if bytes(mine.buffer[:5]) == b"hello":
                    mine.buffer[100:105] = b"world"
                    code = 0
                mine.detach()
                dynshm.worker_exit()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        action = dynshm.supervisor_worker_exited(pid, status)
        check("a forked worker attaches by handle and writes back",
              os.waitstatus_to_exitcode(status) == 0 and bytes(seg.buffer[100:105]) == b"world")
        check("a clean worker exit needs no crash action", action == 0)

        pid = os.fork()
        if pid == 0:
            try:
                dynshm.worker_init_after_fork()
                dynshm.attach(seg.handle)
                os.kill(os.getpid(), signal.SIGKILL)
            finally:
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        action = dynshm.supervisor_worker_exited(pid, status)
        check("a SIGKILLed worker is a crash the supervisor is told of", action != 0)

        try:
            dynshm.attach(0x42)
            check("attaching an unknown handle fails", False)
        except dynshm.DynshmError as e:
            check("attaching an unknown handle raises with the library's message",
                  e.code < 0 and "handle" in e.message)
        seg.detach()
        dynshm.supervisor_shutdown()
    check("nothing is left in /dev/shm", objects(ours) == [])
    print(f"python-binding: {checks} checks, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
