# SPDX-License-Identifier: MIT
"""dynshm.py - a small Python binding of libdynshm (ctypes, no build step).

It covers what a Python supervisor, worker or test harness needs to share
memory with C processes of the same instance: start or join an instance,
create and attach segments by handle, see them as writable memoryviews,
pin, detach, and tell the supervisor how a worker ended.  Errors raise
DynshmError carrying the library's message, detail and hint.

Why ctypes: it needs nothing but the installed shared library, so the
binding cannot drift from a separately built extension; the cost is a few
hundred nanoseconds per call, which does not matter for segment lifetimes.
Set DYNSHM_LIBRARY to a path to load a library that is not installed.
"""
import ctypes
import ctypes.util
import os

__all__ = ["DynshmError", "Segment", "version", "supervisor_start", "supervisor_shutdown",
           "supervisor_worker_exited", "worker_attach", "worker_init_after_fork",
           "worker_exit", "create", "attach", "unpin_segment", "control_handle"]


def _load():
    path = os.environ.get("DYNSHM_LIBRARY") or ctypes.util.find_library("dynshm")
    if path is None:
        raise OSError("libdynshm not found: install it, or set DYNSHM_LIBRARY")
    return ctypes.CDLL(path, use_errno=True)


_lib = _load()
_seg_p = ctypes.c_void_p
_sig = {
    "dsm_version": (ctypes.c_char_p, []),
    "dsm_errmsg": (ctypes.c_char_p, []),
    "dsm_errdetail": (ctypes.c_char_p, []),
    "dsm_errhint": (ctypes.c_char_p, []),
    "dsm_supervisor_start": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_void_p]),
    "dsm_supervisor_shutdown": (ctypes.c_int, []),
    "dsm_control_handle": (ctypes.c_uint64, []),
    "dsm_supervisor_worker_exited": (ctypes.c_int, [ctypes.c_int, ctypes.c_int]),
    "dsm_worker_attach": (ctypes.c_int, [ctypes.c_char_p]),
    "dsm_worker_init_after_fork": (ctypes.c_int, []),
    "dsm_worker_exit": (None, []),
    "dsm_create": (ctypes.c_int, [ctypes.c_size_t, ctypes.c_int, ctypes.POINTER(_seg_p)]),
    "dsm_attach": (ctypes.c_int, [ctypes.c_uint64, ctypes.POINTER(_seg_p)]),
    "dsm_detach": (ctypes.c_int, [_seg_p]),
    "dsm_segment_address": (ctypes.c_void_p, [_seg_p]),
    "dsm_segment_map_length": (ctypes.c_size_t, [_seg_p]),
    "dsm_segment_handle": (ctypes.c_uint64, [_seg_p]),
    "dsm_pin_segment": (ctypes.c_int, [_seg_p]),
    "dsm_unpin_segment": (ctypes.c_int, [ctypes.c_uint64]),
}
for _name, (_res, _args) in _sig.items():
    _f = getattr(_lib, _name)
    _f.restype = _res
    _f.argtypes = _args


class DynshmError(OSError):
    """A failed dynshm call: .code (negative), .message, .detail, .hint."""

    def __init__(self, code):
        self.code = code
        self.message = _lib.dsm_errmsg().decode(errors="replace")
        self.detail = _lib.dsm_errdetail().decode(errors="replace")
        self.hint = _lib.dsm_errhint().decode(errors="replace")
        text = self.message
        if self.detail:
            text += "\nDETAIL: " + self.detail
        if self.hint:
            text += "\nHINT: " + self.hint
        super().__init__(-code if -4096 < code < 0 else 0, text)


def _check(rc):
    if rc < 0:
        raise DynshmError(rc)
    return rc


def version():
    """The version of the loaded library, "MAJOR.MINOR.PATCH"."""
    return _lib.dsm_version().decode()


def supervisor_start(datadir):
    """Start the facility in this process (default settings)."""
    _check(_lib.dsm_supervisor_start(os.fsencode(datadir), None))


def control_handle():
    """The instance's control segment handle (what an exec'd worker is given)."""
    return _lib.dsm_control_handle()


def supervisor_shutdown():
    _check(_lib.dsm_supervisor_shutdown())


def supervisor_worker_exited(pid, wait_status):
    """Report a reaped worker (os.waitpid's status); returns the crash action."""
    return _check(_lib.dsm_supervisor_worker_exited(pid, wait_status))


def worker_attach(datadir):
    """Join the instance of datadir from a process that was exec'd."""
    _check(_lib.dsm_worker_attach(os.fsencode(datadir)))


def worker_init_after_fork():
    """First call in a child forked from a dynshm process."""
    _check(_lib.dsm_worker_init_after_fork())


def worker_exit():
    """Leave the facility: detach everything and unregister (before os._exit)."""
    _lib.dsm_worker_exit()


class Segment:
    """A mapping of a segment; .buffer is a writable memoryview of it."""

    def __init__(self, ptr):
        self._ptr = ctypes.c_void_p(ptr)
        size = _lib.dsm_segment_map_length(self._ptr)
        addr = _lib.dsm_segment_address(self._ptr)
        self.handle = _lib.dsm_segment_handle(self._ptr)
        self.buffer = memoryview((ctypes.c_char * size).from_address(addr)).cast("B")

    def pin(self):
        """Keep the segment alive after its last detach (until unpin_segment)."""
        _check(_lib.dsm_pin_segment(self._ptr))

    def detach(self):
        """Unmap it; the last detach of an unpinned segment destroys it."""
        if self._ptr is None:
            return
        self.buffer.release()
        ptr, self._ptr = self._ptr, None
        _check(_lib.dsm_detach(ptr))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.detach()


def create(size):
    out = _seg_p()
    _check(_lib.dsm_create(size, 0, ctypes.byref(out)))
    return Segment(out.value)


def attach(handle):
    out = _seg_p()
    _check(_lib.dsm_attach(handle, ctypes.byref(out)))
    return Segment(out.value)


def unpin_segment(handle):
    _check(_lib.dsm_unpin_segment(handle))
