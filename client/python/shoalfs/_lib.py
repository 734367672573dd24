"""_lib.py - ctypes binding of libshoal (client/include/shoal.h) and the error mapping.

Finds libshoal.so, declares argtypes/restype for every function it calls, and turns negative
SHOAL_E* codes into Python exceptions. ctypes drops the GIL around every call into a CDLL, so
reads from many threads run in parallel.
"""
import ctypes
import ctypes.util
import errno
import json
import os
import threading

# Error codes: proto/shoal_err.h (never renumbered).
SHOAL_OK = 0
SHOAL_ENOENT = -1
SHOAL_EACCES = -2
SHOAL_EIO = -3
SHOAL_ETIMEDOUT = -4
SHOAL_EBUSY = -5
SHOAL_EINVAL = -6
SHOAL_EPROTO = -7
SHOAL_ESTALE = -8
SHOAL_ENOMEM = -9
SHOAL_ENOSPC = -10
SHOAL_EISDIR = -11
SHOAL_EROFS = -12
SHOAL_ECORRUPT = -13
SHOAL_EMSGSIZE = -14
SHOAL_ENOTSUP = -15
SHOAL_EUNAVAIL = -16
SHOAL_ECONFIG = -17
SHOAL_ECANCELED = -18
SHOAL_EINTERNAL = -19

SHOAL_VERSION_MAX = 256

READ_ONLY_MESSAGE = "shoal is a read-only cache"


class ShoalError(OSError):
    """An error from libshoal with no closer Python equivalent; .code is the SHOAL_E* code."""


class ClientOptions(ctypes.Structure):
    _fields_ = [
        ("seeds", ctypes.c_char_p),
        ("timeout_ms", ctypes.c_int),
        ("metadata_ttl_ms", ctypes.c_int),
        ("no_ufs_fallback", ctypes.c_bool),
        ("cluster_key", ctypes.c_char_p),
    ]


class Stat(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_uint64),
        ("mtime", ctypes.c_int64),
        ("is_dir", ctypes.c_bool),
        ("version", ctypes.c_char * SHOAL_VERSION_MAX),
    ]


class Read(ctypes.Structure):
    _fields_ = [
        ("uri", ctypes.c_char_p),
        ("offset", ctypes.c_uint64),
        ("length", ctypes.c_size_t),
        ("buf", ctypes.c_void_p),
        ("result", ctypes.c_int64),
    ]


_client_p = ctypes.c_void_p
_listing_p = ctypes.c_void_p

# name: (restype, argtypes)
_SIGNATURES = {
    "shoal_client_new": (_client_p, [ctypes.POINTER(ClientOptions)]),
    "shoal_client_destroy": (None, [ctypes.POINTER(_client_p)]),
    "shoal_stat": (ctypes.c_int, [_client_p, ctypes.c_char_p, ctypes.POINTER(Stat)]),
    "shoal_stat_read": (ctypes.c_int, [_client_p, ctypes.c_char_p, ctypes.POINTER(Stat)]),
    "shoal_list": (ctypes.c_int,
                   [_client_p, ctypes.c_char_p, ctypes.c_bool, ctypes.POINTER(_listing_p)]),
    "shoal_listing_count": (ctypes.c_size_t, [_listing_p]),
    "shoal_listing_uri": (ctypes.c_char_p, [_listing_p, ctypes.c_size_t]),
    "shoal_listing_stat": (ctypes.POINTER(Stat), [_listing_p, ctypes.c_size_t]),
    "shoal_listing_destroy": (None, [ctypes.POINTER(_listing_p)]),
    "shoal_pread": (ctypes.c_int64,
                    [_client_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t,
                     ctypes.c_uint64]),
    "shoal_pread_stat": (ctypes.c_int64,
                         [_client_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p,
                          ctypes.c_size_t, ctypes.c_uint64, ctypes.POINTER(Stat)]),
    "shoal_pread_many": (ctypes.c_int, [_client_p, ctypes.POINTER(Read), ctypes.c_size_t]),
    "shoal_load": (ctypes.c_int,
                   [_client_p, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_uint64)]),
    "shoal_evict": (ctypes.c_int,
                    [_client_p, ctypes.c_char_p, ctypes.c_bool, ctypes.POINTER(ctypes.c_uint64)]),
    "shoal_stats": (ctypes.c_int, [_client_p, ctypes.POINTER(ctypes.c_void_p)]),
    "shoal_members": (ctypes.c_int, [_client_p, ctypes.POINTER(ctypes.c_void_p)]),
    "shoal_free": (None, [ctypes.c_void_p]),
    "shoal_strerror": (ctypes.c_char_p, [ctypes.c_int]),
    "shoal_last_error": (ctypes.c_char_p, []),
}

_lib = None
_lib_lock = threading.Lock()


def library_candidates():
    """The places searched for libshoal.so, in order: (description, path or None). Lazy: the
    system library path is searched (ctypes.util.find_library runs ldconfig, and gcc where
    ldconfig finds nothing: tens of ms) only when the places before it did not do."""
    here = os.path.dirname(os.path.abspath(__file__))
    env = os.environ.get("SHOAL_LIBRARY")
    yield ("$SHOAL_LIBRARY", env or None)
    yield ("next to the package", os.path.join(here, "libshoal.so"))
    yield ("next to the package", os.path.join(os.path.dirname(here), "libshoal.so"))
    yield ("the system library path", ctypes.util.find_library("shoal"))


def load():
    """Loads libshoal once per process and declares its signatures; returns the CDLL.

    Raises OSError naming every place searched when the library is not found.
    """
    global _lib
    if _lib is not None:
        return _lib
    with _lib_lock:
        if _lib is not None:
            return _lib
        tried = []
        for where, path in library_candidates():
            if not path:
                tried.append(f"{where} (not set)" if where.startswith("$") else
                             f"{where} (none found)")
                continue
            if os.sep in path and not os.path.exists(path):
                tried.append(f"{where}: {path} (missing)")
                continue
            try:
                lib = ctypes.CDLL(path)
            except OSError as e:
                tried.append(f"{where}: {path} ({e})")
                continue
            for name, (restype, argtypes) in _SIGNATURES.items():
                fn = getattr(lib, name)
                fn.restype = restype
                fn.argtypes = argtypes
            _lib = lib
            return lib
        raise OSError(errno.ENOENT, "libshoal.so not found; set SHOAL_LIBRARY to its path "
                      "(e.g. build/client/libshoal.so), put it next to the shoalfs package, or "
                      "install it on the system library path. Tried: " + "; ".join(tried))


def strerror(code):
    return load().shoal_strerror(code).decode("utf-8", "replace")


def last_error():
    msg = load().shoal_last_error()
    return msg.decode("utf-8", "replace") if msg else ""


def error(code, what=None):
    """Builds the exception for negative `code`; reads this thread's last error, so call it
    right after the failing call, on the same thread."""
    detail = last_error()
    text = strerror(code)
    if detail:
        text = f"{text}: {detail}"
    if what:
        text = f"{what}: {text}"
    if code == SHOAL_ENOENT:
        return FileNotFoundError(errno.ENOENT, text)
    if code == SHOAL_EACCES:
        return PermissionError(errno.EACCES, text)
    if code == SHOAL_EROFS:
        return PermissionError(errno.EROFS, f"{READ_ONLY_MESSAGE}: {text}")
    if code == SHOAL_ETIMEDOUT:
        return TimeoutError(errno.ETIMEDOUT, text)
    if code == SHOAL_EISDIR:
        return IsADirectoryError(errno.EISDIR, text)
    if code == SHOAL_ESTALE:
        e = ShoalError(errno.ESTALE, f"the file changed while it was being read: {text}")
    else:
        e = ShoalError(errno.EIO, text)
    e.code = code
    return e


def check(rc, what=None):
    """Returns rc when it is >= 0, else raises the mapped exception."""
    if rc < 0:
        raise error(rc, what)
    return rc


def take_json(lib, ptr):
    """Parses the JSON string at `ptr` (from shoal_stats/shoal_members) and frees it."""
    try:
        return json.loads(ctypes.string_at(ptr).decode("utf-8"))
    finally:
        lib.shoal_free(ptr)
