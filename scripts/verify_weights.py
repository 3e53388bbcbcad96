#!/usr/bin/env python3
"""Check that every weights file in an exported artifact dir holds exactly the same tensors.

The tfjs weights (<dir>/<tfjs>/model.json + its weight files, read with numpy) are the reference; every
*.safetensors (read with safetensors.numpy) and every PyTorch state dict *.pt/*.pth/*.bin (read with
torch.load(weights_only=True)) at the top of <dir> must match it: same names, shapes, dtypes, and
bit-identical values. tfjs has no int64, so an int64 tensor may be int32 in tfjs if the values agree.

Exit 0 and print a summary when all match; exit 1 naming the first mismatch; exit 2 on unusable input.
usage: verify_weights.py <dir> [--tfjs tfjs] [--model-json model.json] [--safetensors F]... [--torch F]...
                         [--skip PATTERN]... [--json]
--safetensors/--torch name the files to check instead of globbing; --skip leaves files out (e.g. an LTM
memory bank .safetensors that has no tfjs twin).
"""
import argparse
import fnmatch
import glob
import json
import os
import sys

import numpy as np

TFJS_DTYPES = {"float32": np.float32, "int32": np.int32}


class Mismatch(Exception):
    pass


class Unusable(Exception):
    pass


def read_tfjs(tfjs_dir, model_json_name):
    """OrderedDict-like list of (name, array) from a tf.io model.json artifact."""
    model_json_path = os.path.join(tfjs_dir, model_json_name)
    if not os.path.isfile(model_json_path):
        raise Unusable(f"no tfjs model.json at {model_json_path}")
    with open(model_json_path, encoding="utf-8") as f:
        model_json = json.load(f)
    tensors = {}
    for group in model_json["weightsManifest"]:
        # A group's shards are one byte stream split across files.
        data = b"".join(open(os.path.join(tfjs_dir, p), "rb").read() for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            if spec["dtype"] not in TFJS_DTYPES or "quantization" in spec:
                raise Unusable(f"tfjs weight {spec['name']!r}: unsupported dtype/quantization")
            dtype = np.dtype(TFJS_DTYPES[spec["dtype"]]).newbyteorder("<")
            count = int(np.prod(spec["shape"], dtype=np.int64))
            nbytes = count * dtype.itemsize
            if offset + nbytes > len(data):
                raise Mismatch(f"tfjs: weight files too short for {spec['name']!r}")
            tensors[spec["name"]] = np.frombuffer(data, dtype, count, offset).reshape(spec["shape"])
            offset += nbytes
        if offset != len(data):
            raise Mismatch(f"tfjs: {group['paths']} hold {len(data)} bytes, manifest describes {offset}")
    return tensors


def read_safetensors(path):
    from safetensors.numpy import load_file

    return load_file(path)


def read_torch(path):
    import torch
    import zipfile

    # torch.load does not check the zip CRC-32s, so a flipped storage byte would load silently.
    with zipfile.ZipFile(path) as z:
        bad = z.testzip()
    if bad is not None:
        raise Mismatch(f"{os.path.basename(path)}: CRC-32 mismatch in zip record {bad!r} (file is corrupted)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise Mismatch(f"{path}: not a state dict (got {type(state).__name__})")
    out = {}
    for name, t in state.items():
        if not isinstance(t, torch.Tensor):
            raise Mismatch(f"{path}: entry {name!r} is {type(t).__name__}, not a tensor")
        out[name] = t.detach().contiguous().numpy()
    return out


def compare(label, reference, candidate):
    """Raise Mismatch naming the first difference between the tfjs reference and one file's tensors."""
    missing = [n for n in reference if n not in candidate]
    extra = [n for n in candidate if n not in reference]
    if missing:
        raise Mismatch(f"{label}: tensor {missing[0]!r} is in tfjs but missing here")
    if extra:
        raise Mismatch(f"{label}: tensor {extra[0]!r} is here but not in tfjs")
    for name, ref in reference.items():
        got = candidate[name]
        if tuple(got.shape) != tuple(ref.shape):
            raise Mismatch(f"{label}: tensor {name!r} shape {tuple(got.shape)} != tfjs {tuple(ref.shape)}")
        int64_as_int32 = got.dtype == np.int64 and ref.dtype == np.int32
        if got.dtype != ref.dtype and not int64_as_int32:
            raise Mismatch(f"{label}: tensor {name!r} dtype {got.dtype} != tfjs {ref.dtype}")
        if ref.dtype.kind == "f":
            # Compare bit patterns: exact, and NaN == NaN when the payload is the same.
            a, b = ref.view(np.uint32), got.astype(ref.dtype).view(np.uint32)
        else:
            a, b = ref.astype(np.int64), got.astype(np.int64)
        diff = np.flatnonzero(a.reshape(-1) != b.reshape(-1))
        if diff.size:
            i = int(diff[0])
            raise Mismatch(
                f"{label}: tensor {name!r} differs at flat index {i} "
                f"(tfjs {ref.reshape(-1)[i]!r}, here {got.reshape(-1)[i]!r}; {diff.size} elements differ)"
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", help="artifact directory")
    parser.add_argument("--tfjs", default="tfjs", help="tfjs subdirectory of <dir> (default: tfjs)")
    parser.add_argument("--model-json", default="model.json", help="model.json file name inside the tfjs dir")
    parser.add_argument("--safetensors", action="append", metavar="FILE", help="a safetensors file in <dir>; repeatable (default: all *.safetensors)")
    parser.add_argument("--torch", action="append", metavar="FILE", help="a state-dict file in <dir>; repeatable (default: all *.pt, *.pth, *.bin)")
    parser.add_argument("--skip", action="append", default=[], metavar="PATTERN", help="a file name (glob allowed) to leave out; repeatable")
    parser.add_argument("--json", action="store_true", help="print only a JSON summary")
    args = parser.parse_args()

    summary = {"ok": False, "dir": os.path.abspath(args.dir), "files": []}
    try:
        reference = read_tfjs(os.path.join(args.dir, args.tfjs), args.model_json)
        def pick(named, patterns):
            if named:
                paths = [os.path.join(args.dir, n) for n in named]
                absent = [p for p in paths if not os.path.isfile(p)]
                if absent:
                    raise Unusable(f"{absent[0]} does not exist")
            else:
                paths = sorted(p for pat in patterns for p in glob.glob(os.path.join(args.dir, pat)))
            return [p for p in paths if not any(fnmatch.fnmatch(os.path.basename(p), s) for s in args.skip)]

        files = pick(args.safetensors, ["*.safetensors"])
        torch_files = pick(args.torch, ["*.pt", "*.pth", "*.bin"])
        if not files and not torch_files:
            raise Unusable(f"no *.safetensors or *.pt/*.pth/*.bin files in {args.dir}")
        for path, reader in [(p, read_safetensors) for p in files] + [(p, read_torch) for p in torch_files]:
            label = os.path.basename(path)
            try:
                tensors = reader(path)
            except Mismatch:
                raise
            except Exception as e:  # an unreadable/corrupt file is a failed check, not a crash
                raise Mismatch(f"{label}: cannot be read ({type(e).__name__}: {e})") from e
            compare(label, reference, tensors)
            summary["files"].append(label)
        summary.update(
            ok=True,
            skipped=args.skip,
            tfjs=os.path.join(args.tfjs, args.model_json),
            tensors=len(reference),
            parameters=int(sum(a.size for a in reference.values())),
            bytes=int(sum(a.nbytes for a in reference.values())),
        )
        code = 0
    except Mismatch as e:
        summary["error"] = f"mismatch: {e}"
        code = 1
    except (Unusable, OSError, ValueError, KeyError) as e:
        summary["error"] = f"unusable input: {type(e).__name__}: {e}"
        code = 2
    if args.json or code == 0:
        print(json.dumps(summary, indent=None if args.json else 2))
    if code != 0:
        print(summary["error"], file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
