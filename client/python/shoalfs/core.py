"""core.py - ShoalFileSystem (fsspec, protocol "shoal") and ShoalFile (random access reads with
read-ahead, readinto straight into the caller's buffer) over libshoal.

Paths: with target_protocol="s3", "s3://bucket/key", "shoal://bucket/key" and "bucket/key" (what
Ray passes after stripping the scheme) name the same file, and names returned by ls/find/glob/
info are in the scheme-less form "bucket/key" (as s3fs does). With target_protocol="file",
"file:///abs/path" and "/abs/path" both work and names are "/abs/path". With no target_protocol,
every path must carry its scheme and names are full URIs.

Reads copy each byte once into the object the caller gets: cat_file, cat_ranges, read_block and
ShoalFile.read fill a bytes object made at its final size (_Result; shrunk in place when short),
readinto fills the caller's buffer; only small sequential file reads go through a read-ahead
block.
"""
import concurrent.futures
import ctypes
import errno
import io
import os
import threading
import weakref

from fsspec.spec import AbstractFileSystem

from . import _lib

DEFAULT_BLOCK_SIZE = 4 << 20  # one placement range with the default 1 MiB pages x 4
_CHANGE_RETRIES = 2  # cat_file of a file replaced between its first block and the rest
_SIZES_MAX = 1 << 16  # sizes remembered per filesystem (all dropped when full)


def _pyapi(name, restype, argtypes):
    """A private function pointer into the Python C API: indexing ctypes.pythonapi makes a new
    one, so setting its types does not change ctypes.pythonapi.<name> for other code."""
    fn = ctypes.pythonapi[name]
    fn.restype = restype
    fn.argtypes = argtypes
    return fn


# ctypes.pythonapi is a PyDLL: these run with the GIL held and raise the Python error a NULL or
# -1 return set (MemoryError).
_bytes_new = _pyapi("PyBytes_FromStringAndSize", ctypes.py_object,
                    [ctypes.c_void_p, ctypes.c_ssize_t])
_bytes_addr = _pyapi("PyBytes_AsString", ctypes.c_void_p, [ctypes.py_object])
_raw_bytes_new = _pyapi("PyBytes_FromStringAndSize", ctypes.c_void_p,
                        [ctypes.c_void_p, ctypes.c_ssize_t])
_raw_bytes_addr = _pyapi("PyBytes_AsString", ctypes.c_void_p, [ctypes.c_void_p])
_raw_bytes_resize = _pyapi("_PyBytes_Resize", ctypes.c_int,
                           [ctypes.POINTER(ctypes.c_void_p), ctypes.c_ssize_t])
_raw_decref = _pyapi("Py_DecRef", None, [ctypes.c_void_p])


# Results of 4 MiB or more ask for transparent huge pages (madvise MADV_HUGEPAGE), as numpy
# does for its arrays: a fresh result's pages are first touched by the read that fills it, and
# faulting in 4 KiB pages one by one costs more than the copy (64 MiB: ~1 GiB/s against ~5 with
# huge pages on a VM with THP "madvise"). SHOAL_MADVISE_HUGEPAGE=0 turns it off.
_HUGE_MIN = 4 << 20
_HUGE_PAGE = 2 << 20
_MADV_HUGEPAGE = 14  # Linux


def _load_madvise():
    if os.environ.get("SHOAL_MADVISE_HUGEPAGE", "1") == "0" or os.uname().sysname != "Linux":
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return fn


_madvise = _load_madvise()


def _advise_huge(address, length):
    """Asks for huge pages over the whole 2 MiB extents of [address, address + length) (a hint:
    a failure, e.g. THP off, changes nothing)."""
    if _madvise is None or length < _HUGE_MIN:
        return
    lo = (address + _HUGE_PAGE - 1) & ~(_HUGE_PAGE - 1)
    hi = (address + length) & ~(_HUGE_PAGE - 1)
    if hi > lo:
        _madvise(lo, hi - lo, _MADV_HUGEPAGE)


def _new_bytes(length):
    """A fresh, not yet shared bytes object of `length` and its address (read-ahead blocks)."""
    data = _bytes_new(None, length)
    address = _bytes_addr(data)
    _advise_huge(address, length)
    return data, address


class _Result:
    """The bytes object a read returns, made at its final size before the read and filled in
    place by libshoal (one copy, from the reply or the page, into it), then shrunk in place
    (_PyBytes_Resize, a realloc) when the read came back short; never sliced or joined.

    Until take() it is held as a raw reference that no Python code can see, the only one, which
    is what _PyBytes_Resize requires (it reallocates the object, so no other reference may
    exist). A _Result dropped without take() (the read raised) releases it.

    `guess`: the length is a first block of unknown need (most files are smaller): no huge
    pages, which would make a small read zero 2 MiB."""

    __slots__ = ("_ptr", "address", "length")

    def __init__(self, length, guess=False):
        self._ptr = _raw_bytes_new(None, length)
        self.address = _raw_bytes_addr(self._ptr)
        self.length = length
        if not guess:
            _advise_huge(self.address, length)

    def resize(self, length):
        """Grows or shrinks the object (its first min(old, new) bytes kept); moves `address`
        when realloc moved it."""
        if length == self.length:
            return
        ptr = ctypes.c_void_p(self._ptr)
        try:
            _raw_bytes_resize(ctypes.byref(ptr), length)  # raises MemoryError on failure
        finally:
            self._ptr = ptr.value  # NULL (object released) on failure
        grown = length > self.length
        self.address = _raw_bytes_addr(self._ptr)
        self.length = length
        if grown:
            _advise_huge(self.address, length)

    def take(self, length):
        """The bytes object, `length` bytes long (<= its size), handed to the caller."""
        self.resize(length)
        ptr, self._ptr = self._ptr, None
        data = ctypes.cast(ptr, ctypes.py_object).value  # a new reference...
        _raw_decref(ptr)  # ...so the raw one goes: `data` is now the only one
        return data

    def __del__(self):
        ptr, self._ptr = getattr(self, "_ptr", None), None
        if ptr and _raw_decref is not None:  # None at interpreter shutdown
            _raw_decref(ptr)


def _buffer_address(buffer):
    """(address, nbytes, keepalive) of a writable C-contiguous buffer (bytearray, memoryview,
    numpy array, mmap...). Raises TypeError for read-only or non-contiguous buffers."""
    view = memoryview(buffer)
    if view.readonly:
        raise TypeError("readinto() needs a writable buffer")
    view = view.cast("B")  # raises TypeError when not C-contiguous
    if view.nbytes == 0:
        return 0, 0, view
    holder = (ctypes.c_char * view.nbytes).from_buffer(view)
    return ctypes.addressof(holder), view.nbytes, holder


def _read_only(what):
    return PermissionError(errno.EROFS, f"{_lib.READ_ONLY_MESSAGE}: cannot {what}")


class _Client:
    """Owns one shoal_client_t. Destroyed when the last filesystem using it goes away, and
    only in the process that made it: a forked child leaves the parent's client alone."""

    def __init__(self, seeds, timeout_ms, metadata_ttl_ms, no_ufs_fallback, cluster_key):
        self.lib = _lib.load()
        self._seeds = seeds.encode()
        self._key = cluster_key.encode() if cluster_key else None
        opts = _lib.ClientOptions(self._seeds, int(timeout_ms or 0), int(metadata_ttl_ms or 0),
                                  bool(no_ufs_fallback), self._key)
        handle = self.lib.shoal_client_new(ctypes.byref(opts))
        if not handle:
            raise OSError(errno.EINVAL, "shoal_client_new failed: " + _lib.last_error())
        self.handle = handle
        self._finalizer = weakref.finalize(self, _Client._destroy, self.lib, handle, os.getpid())

    @staticmethod
    def _destroy(lib, handle, pid):
        if os.getpid() == pid:
            ptr = ctypes.c_void_p(handle)
            lib.shoal_client_destroy(ctypes.byref(ptr))

    def close(self):
        self._finalizer()


class ShoalFileSystem(AbstractFileSystem):
    """fsspec filesystem reading through a shoal cluster.

    target_protocol: scheme of the under storage ("s3", "az", "hf", "http", "https", "file"),
        or None when every path carries its own scheme.
    seeds: "host:port[,host:port]" of any nodes (default: $SHOAL_SEEDS).
    timeout_ms, metadata_ttl_ms, no_ufs_fallback, cluster_key: shoal_client_options_t.
    block_size: read-ahead block of open files (default 4 MiB).
    """

    protocol = "shoal"
    root_marker = ""
    cachable = True

    def __init__(self, target_protocol=None, seeds=None, timeout_ms=0, metadata_ttl_ms=0,
                 no_ufs_fallback=False, cluster_key=None, block_size=None, **kwargs):
        super().__init__(**kwargs)
        seeds = seeds or os.environ.get("SHOAL_SEEDS")
        if not seeds:
            raise ValueError("shoalfs needs seeds='host:port[,host:port...]' (or $SHOAL_SEEDS)")
        if target_protocol is not None:
            target_protocol = target_protocol.rstrip(":/").lower()
            if not target_protocol:
                target_protocol = None
        self.target_protocol = target_protocol
        self.seeds = seeds
        self.block_size = int(block_size or DEFAULT_BLOCK_SIZE)
        self._client = _Client(seeds, timeout_ms, metadata_ttl_ms, no_ufs_fallback, cluster_key)
        # {uri: size} last seen (listings, info, read replies): a read of unknown length makes
        # its result at that size instead of a first block (one exact read, no 4 MiB object
        # for a small file). Only a guess: the read's reply names the real size, and a file
        # that grew is read on, one that shrank comes back short.
        self._sizes = {}
        # fsspec's generic methods (walk, glob, expand_path...) call self._strip_protocol: on
        # an instance it must also drop the target scheme, which the classmethod cannot know.
        self._strip_protocol = self._name

    # ----------------------------------------------------------------------------- paths

    @classmethod
    def _strip_protocol(cls, path):
        """Class-level strip, used by fsspec.open("shoal://..."): drops "shoal://" only. The
        instance strip (_name) also drops the target scheme."""
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        path = str(path)
        for prefix in ("shoal://", "shoal::"):
            if path.startswith(prefix):
                path = path[len(prefix):]
        return path.rstrip("/") if len(path) > 1 else path

    def _name(self, path):
        """The canonical name of `path` (see the module docstring)."""
        if isinstance(path, list):
            return [self._name(p) for p in path]
        path = os.fspath(path) if not isinstance(path, str) else path
        path = type(self)._strip_protocol(path)
        tp = self.target_protocol
        if tp is None:
            if "://" not in path:
                raise ValueError(f"shoalfs without target_protocol needs a full URI: {path!r}")
            return path
        if "://" in path:
            scheme, rest = path.split("://", 1)
            if scheme.lower() != tp:
                raise ValueError(f"path {path!r} is not a {tp}:// path "
                                 f"(this filesystem has target_protocol={tp!r})")
            path = rest
        if tp == "file":
            path = "/" + path.lstrip("/")
        return path.rstrip("/") if len(path) > 1 else path

    def _uri(self, path):
        """The URI libshoal reads for `path`, as bytes."""
        name = self._name(path)
        if self.target_protocol is None:
            return name.encode()
        if self.target_protocol == "file":
            return ("file://" + name).encode()
        return f"{self.target_protocol}://{name}".encode()

    def _uri_to_name(self, uri):
        uri = uri.decode("utf-8", "surrogateescape") if isinstance(uri, bytes) else uri
        return self._name(uri)

    def unstrip_protocol(self, name):
        return self._uri(name).decode()

    # ----------------------------------------------------------------------------- metadata

    @property
    def _lib(self):
        return self._client.lib

    def _stat(self, uri, reading=False):
        """The stat of `uri`. `reading`: the caller is about to read the file (info): a stat
        this client does not hold is learnt by reading the file's first byte (shoal_stat_read:
        one GET at the origin that also caches range 0, where a STAT is a HEAD now and a GET
        at the read; client/README.md "Ray-style access")."""
        st = _lib.Stat()
        fn = getattr(self._lib, "shoal_stat_read", None) if reading else None
        fn = fn or self._lib.shoal_stat
        _lib.check(fn(self._client.handle, uri, ctypes.byref(st)), uri.decode(errors="replace"))
        return st

    def _remember(self, uri, st):
        if st.is_dir:
            return
        if len(self._sizes) >= _SIZES_MAX:
            self._sizes.clear()
        self._sizes[uri] = int(st.size)

    def _known_rest(self, uri, start):
        """Bytes of `uri` after `start` as last seen, or None (unknown, or nothing left then:
        the file may have grown)."""
        size = self._sizes.get(uri)
        return size - start if size is not None and size > start else None

    def invalidate_cache(self, path=None):
        self._sizes.clear()
        super().invalidate_cache(path)

    def _info_from_stat(self, name, st):
        info = {"name": name, "size": 0 if st.is_dir else int(st.size),
                "type": "directory" if st.is_dir else "file"}
        if st.mtime:
            info["mtime"] = int(st.mtime)
        version = st.version.decode("utf-8", "replace")
        if version:
            info["version"] = version
        return info

    def info(self, path, **kwargs):
        name = self._name(path)
        uri = self._uri(name)
        st = self._stat(uri, reading=True)
        self._remember(uri, st)
        return self._info_from_stat(name, st)

    def _list(self, uri, recursive):
        listing = ctypes.c_void_p()
        _lib.check(self._lib.shoal_list(self._client.handle, uri, recursive,
                                        ctypes.byref(listing)), uri.decode(errors="replace"))
        try:
            out = []
            for i in range(self._lib.shoal_listing_count(listing)):
                entry_uri = self._lib.shoal_listing_uri(listing, i)
                st = self._lib.shoal_listing_stat(listing, i).contents
                self._remember(entry_uri, st)
                out.append(self._info_from_stat(self._uri_to_name(entry_uri), st))
            return out
        finally:
            self._lib.shoal_listing_destroy(ctypes.byref(listing))

    def ls(self, path, detail=True, **kwargs):
        name = self._name(path)
        uri = self._uri(name)
        try:
            entries = self._list(uri, False)
        except (FileNotFoundError, NotADirectoryError):
            entries = []
        except _lib.ShoalError:
            entries = None  # a file, maybe: decided by stat below
        if not entries:
            info = self.info(name)  # FileNotFoundError when there is nothing at all
            entries = [] if info["type"] == "directory" else [info]
        entries.sort(key=lambda e: e["name"])
        return entries if detail else [e["name"] for e in entries]

    def find(self, path, maxdepth=None, withdirs=False, detail=False, **kwargs):
        if maxdepth is not None or withdirs:
            return super().find(path, maxdepth=maxdepth, withdirs=withdirs, detail=detail,
                                **kwargs)
        name = self._name(path)
        try:
            entries = [e for e in self._list(self._uri(name), True) if e["type"] == "file"]
        except (FileNotFoundError, _lib.ShoalError):
            entries = []
        if not entries:
            try:
                info = self.info(name)
            except FileNotFoundError:
                info = None
            if info and info["type"] == "file":
                entries = [info]
        entries.sort(key=lambda e: e["name"])
        if detail:
            return {e["name"]: e for e in entries}
        return [e["name"] for e in entries]

    def size(self, path):
        return self.info(path)["size"]

    def ukey(self, path):
        info = self.info(path)
        return f"{info['name']}:{info.get('version', '')}:{info['size']}"

    def created(self, path):
        raise NotImplementedError("shoal does not know creation times")

    def modified(self, path):
        import datetime
        mtime = self.info(path).get("mtime")
        if mtime is None:
            raise NotImplementedError("the under storage gave no modification time")
        return datetime.datetime.fromtimestamp(mtime, tz=datetime.timezone.utc)

    # ----------------------------------------------------------------------------- reads

    def _pread_into(self, uri, address, length, offset, version=None):
        """One shoal_pread_stat: `version` None reads the current version (libshoal restarts a
        read whose file changed between its ranges), else only that one (SHOAL_ESTALE when it
        is gone). Returns (bytes read, short only at end of file; the Stat of the version)."""
        st = _lib.Stat()
        got = self._lib.shoal_pread_stat(self._client.handle, uri, version, address, length,
                                         offset, ctypes.byref(st))
        if got < 0:
            raise _lib.error(got, uri.decode(errors="replace"))
        self._remember(uri, st)
        return got, st

    def _read_whole(self, uri, start):
        """All bytes of `uri` from `start`, with no stat before: the first read asks for the
        size last seen (listing, info, an earlier read), else for a block; its reply names the
        size and version (one request for a small or known file); a larger file's rest is read
        with that version, and a change in between starts the whole read over (never a mix)."""
        for _ in range(_CHANGE_RETRIES + 1):
            known = self._known_rest(uri, start)
            first = known or self.block_size
            out = _Result(first, guess=known is None)
            got, st = self._pread_into(uri, out.address, first, start)
            if st.is_dir:
                raise IsADirectoryError(errno.EISDIR, f"{uri.decode()}: is a directory")
            total = max(0, int(st.size) - start)
            if got < first or total <= first:
                return out.take(got)
            # The same object grows to the whole file (a realloc: glibc remaps a mapped block
            # rather than copying it) and the rest lands after the first read.
            out.resize(total)
            try:
                rest, _ = self._pread_into(uri, out.address + got, total - got, start + got,
                                           st.version)
            except _lib.ShoalError as e:
                if getattr(e, "code", None) == _lib.SHOAL_ESTALE:
                    continue  # replaced between the two calls: read it again whole
                raise
            return out.take(got + rest)
        raise _lib.ShoalError(errno.ESTALE, f"{uri.decode()}: the file kept changing")

    @staticmethod
    def _clamp(size, start, end):
        """Python-slice style start/end (None, negative) to 0 <= start <= end <= size."""
        start = 0 if start is None else int(start)
        end = size if end is None else int(end)
        if start < 0:
            start = max(0, size + start)
        if end < 0:
            end = max(0, size + end)
        start = min(start, size)
        end = max(start, min(end, size))
        return start, end

    def cat_file(self, path, start=None, end=None, **kwargs):
        uri = self._uri(path)
        if (start is None or start >= 0) and end is None:
            return self._read_whole(uri, int(start or 0))  # no stat: the read is the stat
        if (start is None or start >= 0) and end >= 0:
            start = int(start or 0)
            if end <= start:
                return b""
            out = _Result(end - start)
            got, st = self._pread_into(uri, out.address, end - start, start)
            if st.is_dir:
                raise IsADirectoryError(errno.EISDIR, f"{uri.decode()}: is a directory")
            return out.take(got)  # short past the end of the file
        st = self._stat(uri)  # a negative start or end counts from the size
        if st.is_dir:
            raise IsADirectoryError(errno.EISDIR, f"{uri.decode()}: is a directory")
        start, end = self._clamp(int(st.size), start, end)
        if end == start:
            return b""
        out = _Result(end - start)
        got, _ = self._pread_into(uri, out.address, end - start, start, st.version)
        return out.take(got)

    def cat_ranges(self, paths, starts, ends, max_gap=None, on_error="return", **kwargs):
        """Reads every range with one shoal_pread_many, so all of them are in flight at once.
        on_error="return" puts the exception in place of a failed range, else it raises."""
        if not isinstance(paths, list):
            raise TypeError("paths must be a list")
        if not isinstance(starts, list):
            starts = [starts] * len(paths)
        if not isinstance(ends, list):
            ends = [ends] * len(paths)
        if len(starts) != len(paths) or len(ends) != len(paths):
            raise ValueError("paths, starts and ends must have the same length")
        out = [None] * len(paths)
        reads, slots = [], []
        sizes = {}
        for i, (p, s, e) in enumerate(zip(paths, starts, ends)):
            try:
                uri = self._uri(p)
                if (s is None or s < 0 or e is None or e < 0) and uri not in sizes:
                    sizes[uri] = int(self._stat(uri).size)
                s, e = self._clamp(sizes.get(uri, 1 << 62), s, e)
            except Exception as exc:
                if on_error != "return":
                    raise
                out[i] = exc
                continue
            if e == s:
                out[i] = b""
                continue
            result = _Result(e - s)  # each range lands in the object returned for it
            reads.append((uri, s, e - s, result.address))
            slots.append((i, result))
        if reads:
            array = (_lib.Read * len(reads))()
            for r, (uri, offset, length, address) in zip(array, reads):
                r.uri, r.offset, r.length, r.buf, r.result = uri, offset, length, address, 0
            self._lib.shoal_pread_many(self._client.handle, array, len(reads))
            for r, (i, result) in zip(array, slots):
                if r.result < 0:
                    # shoal_last_error() names only the last failure; the code is per read
                    exc = _lib.error(int(r.result), r.uri.decode(errors="replace"))
                    if on_error != "return":
                        raise exc
                    out[i] = exc
                else:
                    out[i] = result.take(int(r.result))  # shrunk in place when short
        return out

    def read_block(self, fn, offset, length, delimiter=None):
        """fsspec's read_block; without a delimiter one cat_file of the span (no open, no
        stat: a block past the end comes back short), straight into the returned bytes."""
        if delimiter:
            return super().read_block(fn, offset, length, delimiter)
        offset = int(offset)
        if offset < 0:
            raise ValueError(f"read_block offset must be >= 0, not {offset}")
        return self.cat_file(fn, offset, None if length is None else offset + int(length))

    def _open(self, path, mode="rb", block_size=None, autocommit=True, cache_options=None,
              **kwargs):
        if mode != "rb":
            raise _read_only(f"open {path!r} with mode {mode!r}")
        return ShoalFile(self, path, block_size=block_size or self.block_size)

    # ----------------------------------------------------------------------------- extras

    def load(self, path, replicas=1):
        """Warms one file into the cache; returns the bytes loaded."""
        uri = self._uri(path)
        loaded = ctypes.c_uint64(0)
        _lib.check(self._lib.shoal_load(self._client.handle, uri, int(replicas),
                                        ctypes.byref(loaded)), uri.decode(errors="replace"))
        return loaded.value

    def evict(self, path, recursive=False):
        """Drops cached pages of `path` (and below it when recursive); returns bytes freed."""
        uri = self._uri(path)
        freed = ctypes.c_uint64(0)
        _lib.check(self._lib.shoal_evict(self._client.handle, uri, bool(recursive),
                                         ctypes.byref(freed)), uri.decode(errors="replace"))
        return freed.value

    def stats(self):
        """Cluster statistics (shoal_stats) as parsed JSON."""
        ptr = ctypes.c_void_p()
        _lib.check(self._lib.shoal_stats(self._client.handle, ctypes.byref(ptr)), "stats")
        return _lib.take_json(self._lib, ptr)

    def members(self):
        """The membership view (shoal_members) as parsed JSON."""
        ptr = ctypes.c_void_p()
        _lib.check(self._lib.shoal_members(self._client.handle, ctypes.byref(ptr)), "members")
        return _lib.take_json(self._lib, ptr)

    # ----------------------------------------------------------------------------- writes

    def mkdir(self, path, create_parents=True, **kwargs):
        raise _read_only(f"mkdir {path!r}")

    def makedirs(self, path, exist_ok=False):
        raise _read_only(f"makedirs {path!r}")

    def rmdir(self, path):
        raise _read_only(f"rmdir {path!r}")

    def rm_file(self, path):
        raise _read_only(f"remove {path!r}")

    def _rm(self, path):
        raise _read_only(f"remove {path!r}")

    def rm(self, path, recursive=False, maxdepth=None):
        raise _read_only(f"remove {path!r}")

    def touch(self, path, truncate=True, **kwargs):
        raise _read_only(f"touch {path!r}")

    def pipe_file(self, path, value, **kwargs):
        raise _read_only(f"write {path!r}")

    def pipe(self, path, value=None, **kwargs):
        raise _read_only(f"write {path!r}")

    def put_file(self, lpath, rpath, callback=None, **kwargs):
        raise _read_only(f"upload to {rpath!r}")

    def put(self, lpath, rpath, recursive=False, callback=None, **kwargs):
        raise _read_only(f"upload to {rpath!r}")

    def cp_file(self, path1, path2, **kwargs):
        raise _read_only(f"copy to {path2!r}")

    def copy(self, path1, path2, recursive=False, on_error=None, **kwargs):
        raise _read_only(f"copy to {path2!r}")

    def mv(self, path1, path2, recursive=False, maxdepth=None, **kwargs):
        raise _read_only(f"move {path1!r}")


# Read-ahead runs on a small pool per process; a forked child makes its own (threads do not
# survive fork, and a future inherited from the parent would never complete).
_pool = None
_pool_pid = None
_pool_lock = threading.Lock()


def _prefetch_pool():
    global _pool, _pool_pid
    pid = os.getpid()
    if _pool is None or _pool_pid != pid:
        with _pool_lock:
            if _pool is None or _pool_pid != pid:
                _pool = concurrent.futures.ThreadPoolExecutor(
                    max_workers=4, thread_name_prefix="shoalfs-readahead")
                _pool_pid = pid
    return _pool


class _Block:
    """Bytes [start, start + length) of a file, read into memory we own."""

    __slots__ = ("start", "length", "data", "address")

    def __init__(self, start, length):
        self.start = start
        self.length = length
        self.data, self.address = _new_bytes(length)


class ShoalFile(io.BufferedIOBase):
    """A read-only, seekable file of a shoal filesystem.

    Pins the version seen at open: every byte comes from that version, and a read that sees
    another version raises OSError ("the file changed"). Large reads go straight into the
    caller's memory; small sequential reads are served from read-ahead blocks of
    `block_size` bytes, the next one fetched in the background while the current is consumed.
    Random reads fetch only what they ask for.
    """

    def __init__(self, fs, path, block_size=DEFAULT_BLOCK_SIZE):
        super().__init__()
        self.fs = fs
        self.path = fs._name(path)
        self.mode = "rb"
        self.blocksize = int(block_size)
        self._uri = fs._uri(self.path)
        # No stat at open: the first read is the stat (its reply names the size and version,
        # which every later read then pins). `size` before any read stats the file.
        self._size = None
        self.version = None  # str once known
        self._version_bytes = None
        self._pos = 0
        # End of the previous read: a read starting there is sequential. The first read is
        # taken as random, so a small read of a header does not pull a whole block.
        self._last_end = -1
        self._block = None  # _Block holding bytes around _pos, or None
        self._ahead = None  # (pid, start, future of _Block) read-ahead in flight
        self._lock = threading.Lock()

    def _pin(self, st):
        if st.is_dir:
            raise IsADirectoryError(errno.EISDIR, f"{self._uri.decode()}: is a directory")
        self.fs._remember(self._uri, st)
        self._size = int(st.size)
        self._version_bytes = bytes(st.version)
        self.version = self._version_bytes.decode("utf-8", "replace")

    @property
    def size(self):
        if self._size is None:
            self._pin(self.fs._stat(self._uri))
        return self._size

    def __repr__(self):
        return f"<ShoalFile {self._uri.decode()} version={self.version!r}>"

    # -- io.IOBase
    def readable(self):
        return True

    def seekable(self):
        return True

    def writable(self):
        return False

    def write(self, data):
        raise _read_only(f"write to {self.path!r}")

    def tell(self):
        self._check_closed()
        return self._pos

    def seek(self, offset, whence=io.SEEK_SET):
        self._check_closed()
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if pos < 0:
            raise ValueError(f"negative seek position {pos}")
        self._pos = int(pos)
        return self._pos

    def info(self):
        return self.fs.info(self.path)

    def close(self):
        if not self.closed:
            self._block = None
            if self._ahead is not None:
                self._ahead[2].cancel()
                self._ahead = None
        super().close()

    def _check_closed(self):
        if self.closed:
            raise ValueError("I/O operation on closed file")

    # -- reads
    def _learn(self, address, length):
        """The first read of the file, with nothing known: straight into `address`, and the
        reply pins the size and version. Returns the count (short only at the end)."""
        with self._lock:
            pos = self._pos
            got, st = self.fs._pread_into(self._uri, address, length, pos)
            if self._size is None:
                self._pin(st)
            elif bytes(st.version) != self._version_bytes:
                raise self._fail_changed(f"now {bytes(st.version).decode(errors='replace')!r}")
            self._pos = pos + got
            self._last_end = self._pos
            return got

    def read(self, size=-1):
        """Every byte lands once, in the bytes object returned, made at its final size (shrunk
        in place when the file ends first): from the read-ahead block when it holds them, else
        straight from libshoal."""
        self._check_closed()
        if self._size is None:
            if size is None or size < 0:  # unknown length: the size last seen or a block,
                known = self.fs._known_rest(self._uri, self._pos)  # then the rest pinned
                first = known or self.blocksize
                out = _Result(first, guess=known is None)
                got = self._learn(out.address, first)
                rest = max(0, self._size - self._pos) if got == first else 0
                if rest:
                    out.resize(got + rest)  # the same object grows (realloc), no join
                    got += self._read_at_address(out.address + got, rest)
                return out.take(got)
            if size == 0:
                return b""
            out = _Result(size)
            return out.take(self._learn(out.address, size))
        if size is None or size < 0:
            size = self.size - self._pos
        size = max(0, min(size, self.size - self._pos))
        if size == 0:
            return b""
        out = _Result(size)
        return out.take(self._read_at_address(out.address, size))

    read1 = read

    def readall(self):
        return self.read(-1)

    def readinto(self, buffer):
        self._check_closed()
        address, nbytes, holder = _buffer_address(buffer)
        try:
            if self._size is None:
                return self._learn(address, nbytes) if nbytes else 0
            return self._read_at_address(address, min(nbytes, max(0, self.size - self._pos)))
        finally:
            del holder

    readinto1 = readinto

    def _fail_changed(self, detail):
        return _lib.ShoalError(errno.ESTALE, f"{self._uri.decode()}: changed under the reader: "
                               f"the file changed while it was open (version {self.version!r} "
                               f"at open; {detail})")

    def _fetch(self, address, length, offset):
        """Reads exactly `length` bytes (all inside the size seen at open) of the pinned
        version, or raises: the read carries the version, so libshoal fails it (ESTALE) rather
        than return bytes of another one."""
        try:
            got, _ = self.fs._pread_into(self._uri, address, length, offset,
                                         self._version_bytes)
        except _lib.ShoalError as e:
            if getattr(e, "code", None) == _lib.SHOAL_ESTALE:
                raise self._fail_changed(str(e)) from None
            raise
        if got != length:
            raise self._fail_changed(f"{got} bytes at offset {offset} where {length} were due")

    def _fetch_block(self, start):
        length = min(self.blocksize, self.size - start)
        block = _Block(start, length)
        self._fetch(block.address, length, start)
        return block

    def _start_ahead(self, start):
        if start >= self.size:
            return
        if self._ahead is not None and self._ahead[0] == os.getpid() and self._ahead[1] == start:
            return
        self._ahead = (os.getpid(), start, _prefetch_pool().submit(self._fetch_block, start))

    def _take_ahead(self, pos):
        """The read-ahead block holding `pos`, when one was started in this process."""
        ahead, self._ahead = self._ahead, None
        if ahead is None:
            return None
        pid, start, future = ahead
        if pid != os.getpid():
            return None
        if not (start <= pos < start + min(self.blocksize, self.size - start)):
            future.cancel()
            return None
        return future.result()  # raises what the read-ahead raised

    def _read_at_address(self, address, length):
        """Reads `length` bytes (already clamped to the file) at the position into memory at
        `address`; returns the count.

        Bytes held by the read-ahead block (or the one in flight at the position) are copied
        from it; every other byte is read straight into `address`. A small sequential read
        whose bytes are not held reads just them and starts the next block in the background;
        a read of `block_size` or more (or a random one) bypasses the blocks: it starts no
        read-ahead, so a loop of large reads never goes through a block."""
        with self._lock:
            pos = self._pos
            sequential = pos == self._last_end
            small = length < self.blocksize
            done = 0
            while done < length:
                block = self._block
                if block is not None and block.start <= pos < block.start + block.length:
                    k = min(length - done, block.start + block.length - pos)
                    ctypes.memmove(address + done, block.address + (pos - block.start), k)
                    done += k
                    pos += k
                    if pos == block.start + block.length:
                        self._block = None  # its successor is already being read ahead
                    continue
                ahead = self._take_ahead(pos)
                if ahead is not None:
                    self._block = ahead
                    if small:
                        self._start_ahead(ahead.start + ahead.length)
                    continue
                remaining = length - done
                self._fetch(address + done, remaining, pos)
                done += remaining
                pos += remaining
                if sequential and small:
                    self._start_ahead(pos)
            self._pos = pos
            self._last_end = pos
            return done
