"""shoalfs - fsspec filesystem over libshoal, the client of a shoal read cache.

Importing shoalfs registers the fsspec protocol "shoal", so after `import shoalfs`:

    fs = fsspec.filesystem("shoal", target_protocol="s3", seeds="127.0.0.1:7070")
    fs.cat_file("bucket/key")           # or "s3://bucket/key", or "shoal://bucket/key"
"""
import fsspec

from ._lib import READ_ONLY_MESSAGE, ShoalError
from .core import ShoalFile, ShoalFileSystem

__all__ = ["ShoalFileSystem", "ShoalFile", "ShoalError", "READ_ONLY_MESSAGE"]
__version__ = "0.1.0"

fsspec.register_implementation("shoal", ShoalFileSystem, clobber=True)
