"""PyTorch arm of bench/cognate-throughput.ts: the Cognate model's PyTorch port
(activities/cognate/engine/hf/modeling_cognate.py) trained eagerly at the benchmark's config, one step per
command, so the TypeScript parent can interleave it with the tfjs arms.

Protocol (JSON lines): argv[1] is the model config (the tfjs ModelConfig, camelCase) with batchSize and
seqLen; it prints {"ready": ...} once set up, then answers each stdin line:
  {"cmd": "step", "fill": N}   one training step; the LTM bank holds N slots (the tfjs arm's fill)
  {"cmd": "rate", "ms": M}     fp32 matmul GFLOP/s at the benchmark's shapes, each timed ~M ms
  {"cmd": "finish"}            peak RSS, then exit
The step: forward (ACT in training mode, LTM read over the bank), cross-entropy + ponder cost as model.ts
loss(), backward, torch.optim.AdamW (decay on matrices only, as common/optim.ts). The bank is read-only in
the port (writes live in tfjs), so it is filled with random unit keys up to the tfjs arm's fill: the read and
its search cost what they cost there. 2 threads, like the native TensorFlow arm.
"""
import json
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

# engine/hf is imported as the namespace package `hf` (modeling_cognate imports its config relatively).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "activities", "cognate", "engine"))
from hf.configuration_cognate import CognateConfig  # noqa: E402
from hf.modeling_cognate import CognateForCausalLM  # noqa: E402


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    spec = json.loads(sys.argv[1])
    c = spec["config"]
    batch, seq = spec["batchSize"], spec["seqLen"]
    torch.set_num_threads(2)
    torch.manual_seed(1234)
    config = CognateConfig(
        vocab_size=c["vocabSize"], hidden_size=c["dModel"], num_hidden_layers=c["nLayers"], num_attention_heads=c["nHeads"],
        intermediate_size=c["dFF"], max_position_embeddings=c["maxSeqLen"], act_enabled=c["actEnabled"],
        act_threshold=c["actThreshold"], ponder_cost=c["ponderCost"], mem_enabled=c["memEnabled"],
        mem_capacity=c["memCapacity"], mem_top_k=c["memTopK"], mem_layer=c.get("memLayer", -1),
    )
    model = CognateForCausalLM(config)
    model.train()
    memory = model.model.memory
    if memory is not None:
        # One stream of the kNN bank (cognate-ltm/2: [streams, heads, capacity, head_dim]), random unit keys.
        shape = (1, memory.num_heads, memory.capacity, memory.head_dim)
        memory.keys = F.normalize(torch.randn(shape), dim=-1)
        memory.values = torch.randn(shape) * 0.1
        memory.fill = torch.zeros(1, dtype=torch.int64)
        memory.next = torch.zeros(1, dtype=torch.int64)
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-3, betas=(0.9, 0.95), eps=1e-8
    )
    gen = torch.Generator().manual_seed(99)
    emit({"ready": {"backend": "pytorch", "device": f"cpu (torch {torch.__version__}, {torch.get_num_threads()} threads, eager)",
                    "parameters": sum(p.numel() for p in params)}})

    for line in sys.stdin:
        msg = json.loads(line)
        if msg["cmd"] == "step":
            if memory is not None:
                n = min(int(msg.get("fill", 0)), memory.capacity)
                memory.fill = torch.tensor([n], dtype=torch.int64)
                memory.next = torch.tensor([n % memory.capacity], dtype=torch.int64)
            ids = torch.randint(0, config.vocab_size, (batch, seq + 1), generator=gen)
            tokens, targets = ids[:, :-1], ids[:, 1:]
            start = time.perf_counter()
            out = model.model(tokens)
            logits = model.lm_head(out.last_hidden_state)
            loss = F.cross_entropy(logits.reshape(-1, config.vocab_size), targets.reshape(-1)) + out.ponder_cost
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            value = float(loss.item())
            emit({"seconds": time.perf_counter() - start, "loss": value, "meanDepth": float(out.act_steps.mean())})
        elif msg["cmd"] == "rate":
            rates = []
            for m, k, n in msg["shapes"]:
                a, b = torch.randn(m, k), torch.randn(k, n)
                torch.mm(a, b)
                reps, start = 0, time.perf_counter()
                while (time.perf_counter() - start) * 1000 < msg["ms"] or reps < 3:
                    torch.mm(a, b)
                    reps += 1
                seconds = time.perf_counter() - start
                rates.append({"shape": f"[{m},{k}]x[{k},{n}]", "gflops": 2 * m * k * n * reps / seconds / 1e9})
            emit({"rates": rates})
        elif msg["cmd"] == "finish":
            emit({"peakRssMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
            return


if __name__ == "__main__":
    main()
