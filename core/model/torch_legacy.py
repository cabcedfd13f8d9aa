"""Reads a legacy (pre-zip) PyTorch state dict into numpy arrays, without torch and without running its code.

A .pth pickle may name any callable; this reader admits only OrderedDict, the tensor-rebuild function and the
storage types, each replaced by a small stand-in of our own, and refuses every other name before calling it.
"""
import collections
import hashlib
import io
import pickle
import struct
from dataclasses import dataclass

import numpy as np

from core import LabError

MAGIC, PROTOCOL = 0x1950A86A20F9469CFC6C, 1001  # what torch's legacy save writes first
_STORAGE_DTYPES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "LongStorage": "<i8",
                   "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1",
                   "BoolStorage": "?"}


class UnsafePickleError(LabError, pickle.UnpicklingError):
    """The file names a callable the reader does not admit: it is not a plain state dict of tensors."""


@dataclass(frozen=True)
class _StorageType:
    dtype: np.dtype


@dataclass(frozen=True)
class _Storage:
    key: str
    dtype: np.dtype
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    storage: _Storage
    offset: int
    shape: tuple
    stride: tuple


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, *_):
    """Stand-in for torch._utils._rebuild_tensor_v2: records where the tensor's numbers are."""
    if not isinstance(storage, _Storage):
        raise UnsafePickleError("a tensor whose storage is not a storage record: not a plain state dict")
    return _TensorRef(storage, int(storage_offset), tuple(map(int, size)), tuple(map(int, stride)))


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the names a state dict of tensors needs."""

    def __init__(self, file):
        super().__init__(file)
        self.storages = {}

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(np.dtype(_STORAGE_DTYPES[name]))
        raise UnsafePickleError(f"refusing to load {module}.{name}: only tensors in an OrderedDict are read "
                                "from a .pth file; use the weights file the package ships")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and pid[5] is None):
            raise UnsafePickleError(f"unexpected persistent record {str(pid)[:80]}: not a legacy torch state dict")
        _, kind, key, _location, numel, _view = pid
        return self.storages.setdefault(str(key), _Storage(str(key), kind.dtype, int(numel)))


def read_state_dict(path, sha256: str | None = None) -> dict[str, np.ndarray]:
    """The tensors of a legacy torch .pth state dict by name, as numpy arrays; checks the sha256 when given."""
    data = open(path, "rb").read()
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError(f"{path} does not have the expected sha256 {sha256[:12]}…: reinstall the package")
    f = io.BytesIO(data)
    try:
        magic, protocol, sys_info = (_RestrictedUnpickler(f).load() for _ in range(3))
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, IndexError) as e:
        raise ValueError(f"{path} is not a legacy torch file ({e}); a zip-format .pth needs another "
                         "reader") from None
    if magic != MAGIC or protocol != PROTOCOL or not isinstance(sys_info, dict):
        raise ValueError(f"{path} is not a legacy torch file (wrong magic number); a zip-format .pth needs "
                         "another reader")
    if not sys_info.get("little_endian", False):
        raise ValueError(f"{path} was saved big-endian, which this reader does not handle")
    unpickler = _RestrictedUnpickler(f)
    state = unpickler.load()
    keys = _RestrictedUnpickler(f).load()
    if not isinstance(state, dict) or not all(isinstance(v, _TensorRef) for v in state.values()):
        raise ValueError(f"{path} holds no plain state dict of tensors")
    buffers = {}
    for key in keys:
        storage = unpickler.storages[key]
        (numel,) = struct.unpack("<q", f.read(8))
        raw = f.read(numel * storage.dtype.itemsize)
        if numel != storage.numel or len(raw) != numel * storage.dtype.itemsize:
            raise ValueError(f"{path} is truncated or damaged at storage {key}: reinstall the package")
        buffers[key] = np.frombuffer(raw, dtype=storage.dtype)
    return {name: _materialise(ref, buffers[ref.storage.key]) for name, ref in state.items()}


def _materialise(ref: _TensorRef, buffer: np.ndarray) -> np.ndarray:
    """The tensor's own copy of its numbers, laid out as its shape and strides say (bounds checked)."""
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.stride) if n > 0)
    if ref.offset < 0 or last >= buffer.size or any(s < 0 for s in ref.stride):
        raise ValueError("a tensor reaches outside its storage: the file is damaged")
    view = np.lib.stride_tricks.as_strided(buffer[ref.offset:], ref.shape,
                                           [s * buffer.itemsize for s in ref.stride], writeable=False)
    return np.array(view, dtype=buffer.dtype.newbyteorder("="))
