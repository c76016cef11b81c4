#!/usr/bin/env python3
"""Convert a legacy (pre-zip, PyTorch < 1.6) `torch.save` state dict to safetensors, without torch.

    python3 models/mobilenet/pth_to_safetensors.py IN.pth OUT.safetensors

torchvision's mobilenet_v2-b0353104.pth predates PyTorch's zip container, so candle's pickle
reader (zip only) cannot open it. The legacy layout is: four pickles (magic number, protocol
version, system info, the state dict whose tensors refer to storages by persistent id), a
pickle listing the storage keys in file order, then each storage as a little-endian int64
element count followed by its raw little-endian elements. This reads it with the standard
library alone (models/fetch runs it; CI has no torch) and writes every floating-point tensor
as F32, contiguous, names sorted, no metadata, so the output is byte-for-byte reproducible.
Integer tensors (BatchNorm's num_batches_tracked) are dropped: inference does not use them.
"""
import collections
import json
import pickle
import struct
import sys

MAGIC = 0x1950A86A20F9469CFC6C
PROTOCOL = 1001
STORAGE_BYTES = {"FloatStorage": 4, "LongStorage": 8, "IntStorage": 4, "DoubleStorage": 8}


class StorageRef:
    def __init__(self, kind, key, numel):
        self.kind, self.key, self.numel = kind, key, numel


class TensorRef:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)


def rebuild_tensor(storage, offset, size, stride, *_rest):
    return TensorRef(storage, offset, size, stride)


class Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return rebuild_tensor
        if module == "torch" and name in STORAGE_BYTES:
            return name
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"unexpected global {module}.{name} in the checkpoint")

    def persistent_load(self, pid):
        typename, kind, key, _location, numel, view = pid
        if typename != "storage" or view is not None:
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        return StorageRef(kind, key, numel)


def contiguous_strides(size):
    strides, acc = [], 1
    for d in reversed(size):
        strides.append(acc)
        acc *= d
    return tuple(reversed(strides))


def read_legacy(path):
    with open(path, "rb") as f:
        if pickle.load(f) != MAGIC:
            sys.exit(f"{path}: not a legacy torch.save file (bad magic number)")
        if pickle.load(f) != PROTOCOL:
            sys.exit(f"{path}: unsupported protocol version")
        pickle.load(f)  # sys_info
        state = Unpickler(f).load()
        keys = pickle.load(f)
        raw = {}
        for key in keys:
            (count,) = struct.unpack("<q", f.read(8))
            raw[key] = (count, f.tell())
            f.seek(count * storage_size(state, key), 1)
        f.seek(0)
        data = f.read()
    return state, raw, data


def storage_size(state, key):
    for t in state.values():
        if isinstance(t, TensorRef) and t.storage.key == key:
            return STORAGE_BYTES[t.storage.kind]
    sys.exit(f"storage {key} is not used by any tensor; cannot size it")


def main():
    src, dst = sys.argv[1], sys.argv[2]
    state, raw, data = read_legacy(src)
    header, chunks, at = {}, [], 0
    for name in sorted(state):
        t = state[name]
        if not isinstance(t, TensorRef):
            sys.exit(f"{src}: {name} is not a tensor")
        if t.storage.kind != "FloatStorage":
            continue
        if t.stride != contiguous_strides(t.size) and 0 not in t.size:
            sys.exit(f"{src}: {name} is not contiguous (size {t.size}, stride {t.stride})")
        count, start = raw[t.storage.key]
        n = 1
        for d in t.size:
            n *= d
        if t.offset + n > count:
            sys.exit(f"{src}: {name} runs past its storage")
        lo = start + 4 * t.offset
        chunk = data[lo:lo + 4 * n]
        header[name] = {"dtype": "F32", "shape": list(t.size), "data_offsets": [at, at + len(chunk)]}
        chunks.append(chunk)
        at += len(chunk)
    text = json.dumps(header, separators=(",", ":"))
    text += " " * (-len(text) % 8)
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text.encode())
        for c in chunks:
            f.write(c)


if __name__ == "__main__":
    main()
