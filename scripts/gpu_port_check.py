#!/usr/bin/env python3
"""The exported Cognate model's PyTorch port (activities/cognate/engine/hf/modeling_cognate.py) on a CUDA GPU.

For a GPU machine that has PyTorch but not the TypeScript worker: it checks that what a user loads from a Cognate
export (AutoModelForCausalLM with trust_remote_code) trains and generates on the device, at the product's default
config (24.1M parameters, ACT, LTM), and measures it. The worker's own GPU route (tfjs-node-gpu) is checked by
scripts/gpu-smoke instead.

  1. training steps with ACT in training mode and an LTM bank of `fill` random unit keys per stream (the port's
     bank is read-only: filled as bench/cognate_torch_step.py does, the read costs what a filled bank costs),
     float32 and bfloat16 autocast; median step time over 10 steps after 2 warm-ups
  2. eval-mode forward (halted positions skip their remaining blocks) and greedy generate()

  python3 scripts/gpu_port_check.py [--batch 16 --seq 512 --fill 1024 --device cuda --config '{"num_hidden_layers": 3}']
Prints one JSON object.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "activities", "cognate", "engine"))
from hf.configuration_cognate import CognateConfig  # noqa: E402
from hf.modeling_cognate import CognateForCausalLM  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--fill", type=int, default=1024, help="LTM entries per stream (capped at mem_capacity)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--config", default="{}", help="CognateConfig overrides as JSON (default: the product's default model)")
    args = parser.parse_args()
    dev = args.device
    if dev == "cuda" and not torch.cuda.is_available():
        print(json.dumps({"ok": False, "error": "no CUDA device visible to torch"}))
        return 1
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    cfg = CognateConfig(**json.loads(args.config))
    model = CognateForCausalLM(cfg).to(dev)
    B, T = args.batch, args.seq
    res = {
        "device": torch.cuda.get_device_name(0) if dev == "cuda" else "cpu",
        "torch": torch.__version__,
        "params": sum(p.numel() for p in model.parameters()),
        "batch": B,
        "seq": T,
    }
    if model.model.memory is not None:
        mem = model.model.memory
        heads, head_dim, fill = cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads, min(args.fill, cfg.mem_capacity)
        mem.keys = F.normalize(torch.randn(B, heads, cfg.mem_capacity, head_dim, device=dev), dim=-1)
        mem.values = 0.1 * torch.randn(B, heads, cfg.mem_capacity, head_dim, device=dev)
        mem.fill = torch.full((B,), fill, dtype=torch.int64, device=dev)
        mem.next = torch.full((B,), fill % cfg.mem_capacity, dtype=torch.int64, device=dev)
        res["ltmFillPerStream"] = fill
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    ids = torch.randint(0, cfg.vocab_size, (B, T), device=dev)
    ok = True
    for mode in ("float32", "bfloat16"):
        model.train()
        times = []
        for _ in range(12):
            sync()
            t0 = time.perf_counter()
            with torch.autocast(dev, dtype=torch.bfloat16, enabled=mode == "bfloat16"):
                out = model(ids, labels=ids)
            out.loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            sync()
            times.append(time.perf_counter() - t0)
        step = sorted(times[2:])[len(times[2:]) // 2]
        loss = float(out.loss.detach())
        ok = ok and loss == loss and abs(loss) != float("inf")
        res[f"train_{mode}"] = {"loss": loss, "medianStepSeconds": step, "tokensPerSecond": B * T / step}
    model.eval()
    with torch.no_grad():
        out = model(ids[:4, :128])
        res["evalMeanBlocks"] = float(out.act_steps.mean())
        res["generatedLength"] = int(model.generate(ids[:1, :16], max_new_tokens=8, do_sample=False).shape[1])
    if dev == "cuda":
        res["peakGiB"] = torch.cuda.max_memory_allocated() / 2**30
    res["ok"] = ok and res["generatedLength"] == 24
    print(json.dumps(res))
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
