"""PyTorch implementation of the Cognate model, loadable with
`AutoModelForCausalLM.from_pretrained(export_dir, trust_remote_code=True)`.

It is a port of activities/cognate/engine/model.ts (+ layers.ts, act.ts, ltm.ts, embedding.ts) and must
compute the same numbers: test/cognate-hf.test.ts holds its logits to the tfjs model's within 1e-4.

    tokens [B, T] -> embedding -> N x block -> ACT-weighted state -> RMSNorm -> LM head -> logits [B, T, V]
    block(x) = x + SelfAttn(norm x)                      causal, rotary (GPT-NeoX half split, base rope_theta)
                 + SwiGLU(norm .)
    memory block (mem_layer, default floor(N / 2); Memorizing Transformers, arXiv 2203.08913), per head h:
        local  = the causal rotary attention above, with values v_t = W_v h_t + W_vp h_{t-1} (h_{-1} = 0)
        memory = softmax over the top-k bank entries (by cosine of the pre-rotary query and key) of
                 tau_h * cos(q, k), tau_h = exp(memory_log_scale[h]), times their values
        g      = sigmoid(memory_gate(norm x))[h]         per position and head
        head   = local + g * (memory - local)             (local alone while the bank is empty)
    ACT: after every block but the last, p = sigmoid(halting(x)) per position. A position halts at the first
         block n where sum_{m<=n} p_m >= act_threshold (or at the last block); its output is
         sum_{m<n} p_m * s_m + R * s_n with R = 1 - sum_{m<n} p_m; ponder cost = N + R.

Things a reader could easily get wrong, all as in the tfjs model:
- RMSNorm is x * rsqrt(mean(x^2) + eps) * w with eps 1e-6, applied before each sublayer; the halting unit
  reads the raw (un-normed) residual state.
- The memory block's query and the bank's keys are taken *before* rotary (a memory has no position in the
  segment) and normalised to unit length (x / sqrt(|x|^2 + 1e-12)); k = min(top_k, S) with S the largest
  fill of the streams read; a stream with fewer entries is padded, the padding masked with -1e9. Row b of
  the batch reads stream b of the bank. The memory block runs on every position even in inference with ACT
  (halted positions then keep their state), where the other blocks skip halted positions.
- Inference (model.eval()): a halted position skips the remaining blocks and keeps its state, but the
  still-running positions' queries attend to it (its frozen state is a key/value). Training (model.train())
  runs every block on every position and then keeps the halted positions' old state: the same numbers.
- float32 is the reference dtype. bfloat16/float16 load and run (from_pretrained(..., dtype=...)), but their rounding can
  move a position's halting sum across act_threshold, so they may halt after other blocks than tfjs does.
- generate() has no KV cache: every step recomputes the whole sequence. That is exact (every computation is
  causal, ACT halting included) and simple; it costs one forward of the whole sequence per generated token.
  A cache would have to hold each halted position's frozen state per block, not only keys and values.

The long-term memory bank is not a parameter: it is the export's ltm.safetensors (format cognate-ltm/2), loaded
by from_pretrained into CognateLongTermMemory (non-persistent buffers) and written back by save_pretrained.
It is read-only here: a forward reads the bank as tfjs inference does but never writes to it (tfjs writes the
memory block's keys/values while training); parity with tfjs needs no writes.
"""
import json
import math
import os
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_cognate import CognateConfig

LTM_FORMAT = "cognate-ltm/2"
# Additive mask value of the tfjs model (layers.ts causalMask): exp(-1e9 - max) is exactly 0 in float32.
MASK_VALUE = -1e9


def memory_layer(config: CognateConfig) -> int:
    """Index of the block that reads the LTM (model.ts memLayer): mem_layer, -1 meaning floor(N / 2); -1 without memory."""
    if not config.mem_enabled:
        return -1
    return config.mem_layer if config.mem_layer >= 0 else config.num_hidden_layers // 2


class CognateLongTermMemory(nn.Module):
    """The long-term memory (ltm.ts): a kNN memory of the memory block's attention keys and values, read-only here.

    Everything about the bank lives in this class: its file format (ltm.safetensors, format cognate-ltm/2:
    keys, values [streams, heads, capacity, head_dim] float32, the pre-rotary keys and the values of block
    mem_layer; fill, next [streams] int64, slot i of stream b valid for i < fill[b], next the FIFO write
    slot; config/stats/loss_stats JSON in the metadata) and how a forward reads it (tensors()).

    Read-only: tfjs writes the bank while training (every position of every segment, FIFO per stream, an
    optional surprise filter); a forward here only reads it, which is all the parity with tfjs inference
    needs. A PyTorch user who wants a growing memory would add a `write(keys, values)` that appends the
    forward's memory-block keys/values per stream as ltm.ts does. Row b of a batch reads stream b (the
    document stream it continues); a batch of one row reads stream 0.
    """

    def __init__(self, config: CognateConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.capacity = config.mem_capacity
        self.top_k = config.mem_top_k
        self.stats = {}  # counters of ltm.ts (reads, writes, evictions, ...), kept for save()
        self.metadata = {}
        # Non-persistent: the bank is not in model.safetensors (it is not trained by gradients); from_pretrained
        # loads it from its own file.
        self.register_buffer("keys", torch.zeros(0, self.num_heads, self.capacity, self.head_dim), persistent=False)
        self.register_buffer("values", torch.zeros(0, self.num_heads, self.capacity, self.head_dim), persistent=False)
        self.register_buffer("fill", torch.zeros(0, dtype=torch.int64), persistent=False)
        self.register_buffer("next", torch.zeros(0, dtype=torch.int64), persistent=False)

    @property
    def size(self) -> int:
        """Slots in use over all streams."""
        return int(self.fill.sum().item())

    def load(self, path: str) -> None:
        from safetensors import safe_open

        with safe_open(path, framework="pt") as f:
            metadata = dict(f.metadata() or {})
            if metadata.get("format") != LTM_FORMAT:
                raise ValueError(f"{path}: format is {metadata.get('format')!r}, expected {LTM_FORMAT!r}")
            tensors = {name: f.get_tensor(name) for name in f.keys()}
        for name in ("keys", "values", "fill", "next"):
            if name not in tensors:
                raise ValueError(f"{path}: tensor {name!r} missing")
        keys, values, fill, nxt = tensors["keys"], tensors["values"], tensors["fill"], tensors["next"]
        n = fill.shape[0]
        want = (n, self.num_heads, self.capacity, self.head_dim)
        if tuple(keys.shape) != want or tuple(values.shape) != want or tuple(nxt.shape) != (n,):
            raise ValueError(
                f"{path}: keys/values/next have shapes {tuple(keys.shape)}/{tuple(values.shape)}/{tuple(nxt.shape)}, "
                f"config says [streams, num_attention_heads, mem_capacity, head_dim] = {list(want)}"
            )
        if bool(((fill < 0) | (fill > self.capacity) | (nxt < 0) | (nxt >= self.capacity)).any()):
            raise ValueError(f"{path}: fill {fill.tolist()} / next {nxt.tolist()} out of range for mem_capacity {self.capacity}")
        device = self.keys.device
        self.keys = keys.to(device=device, dtype=torch.float32)
        self.values = values.to(device=device, dtype=torch.float32)
        self.fill = fill.to(device=device, dtype=torch.int64)
        self.next = nxt.to(device=device, dtype=torch.int64)
        self.stats = json.loads(metadata.get("stats", "{}"))
        self.metadata = metadata

    def save(self, path: str) -> None:
        from safetensors.torch import save_file

        tensors = {name: getattr(self, name).detach().cpu().contiguous() for name in ("keys", "values", "fill", "next")}
        save_file(tensors, path, metadata={**self.metadata, "format": LTM_FORMAT, "stats": json.dumps(self.stats)})

    def tensors(self, rows: int, dtype: torch.dtype):
        """The bank of streams 0..rows-1 (ltm.ts tensors): keys, values [rows, H, S, D] and an additive mask
        [rows, 1, 1, S] (0 in use, MASK_VALUE padding; None when every slot is in use), S the largest fill;
        None when those streams are all empty."""
        fills = [int(self.fill[b]) if b < self.fill.shape[0] else 0 for b in range(rows)]
        s = max(fills, default=0)
        if s == 0:
            return None
        shape = (rows, self.num_heads, s, self.head_dim)
        keys = torch.zeros(shape, dtype=dtype, device=self.keys.device)
        values = torch.zeros(shape, dtype=dtype, device=self.keys.device)
        for b, f in enumerate(fills):
            if f == 0:
                continue  # a row without a stream yet (ltm.ts: empty, all padding)
            keys[b, :, :f] = self.keys[b, :, :f].to(dtype)
            values[b, :, :f] = self.values[b, :, :f].to(dtype)
        if all(f == s for f in fills):
            return keys, values, None
        slot = torch.arange(s, device=self.keys.device)
        used = slot[None, :] < torch.tensor(fills, device=self.keys.device)[:, None]  # [rows, S]
        mask = torch.where(used, 0.0, mask_value(dtype)).to(dtype)[:, None, None, :]
        return keys, values, mask

    def count_reads(self, n: int) -> None:
        """ltm.ts counts rows x T x heads reads per forward of the memory block."""
        self.stats["reads"] = self.stats.get("reads", 0) + n


class CognateRMSNorm(nn.Module):
    def __init__(self, hidden_size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(-1, keepdim=True) + self.eps) * self.weight


def mask_value(dtype: torch.dtype) -> float:
    """MASK_VALUE where the dtype can hold it (float32, bfloat16), else its most negative value (float16)."""
    return max(MASK_VALUE, torch.finfo(dtype).min)


def rotary_tables(length: int, head_dim: int, base: float, device=None):
    """cos, sin [length, head_dim], half-split layout; angles computed in float64 then rounded (layers.ts)."""
    half = head_dim // 2
    t = torch.arange(length, dtype=torch.float64, device=device)[:, None]
    i = torch.arange(half, dtype=torch.float64, device=device)[None, :]
    angle = t / torch.pow(torch.tensor(base, dtype=torch.float64, device=device), 2 * i / head_dim)
    angle = torch.cat([angle, angle], dim=-1)
    return torch.cos(angle).float(), torch.sin(angle).float()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [..., R, H, D] rotated by per-row tables cos, sin [R, D]."""
    return x * cos[:, None, :] + rotate_half(x) * sin[:, None, :]


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T * D^-1/2 + mask) v; q [..., Tq, D], k, v [..., Tk, D], mask [Tq, Tk] additive."""
    scale = 1 / math.sqrt(q.shape[-1])
    probs = torch.softmax((q @ k.transpose(-1, -2)) * scale + mask, dim=-1)
    return probs @ v


class CognateSelfAttention(nn.Module):
    def __init__(self, config: CognateConfig, memory_block: bool = False):
        super().__init__()
        c = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = c // self.num_heads
        self.top_k = config.mem_top_k
        self.q_proj = nn.Linear(c, c, bias=False)
        self.k_proj = nn.Linear(c, c, bias=False)
        self.v_proj = nn.Linear(c, c, bias=False)
        self.o_proj = nn.Linear(c, c, bias=False)
        self.o_proj._cognate_residual = True
        if memory_block:
            # The memory block (model.ts, block mem_layer): value shift, per-head gate and temperature.
            self.v_prev_proj = nn.Linear(c, c, bias=False)
            self.memory_gate = nn.Linear(c, self.num_heads)  # bias starts at 0: g = 0.5
            self.memory_log_scale = nn.Parameter(torch.full((self.num_heads,), math.log(10.0)))
        else:
            self.v_prev_proj = self.memory_gate = self.memory_log_scale = None

    def forward(self, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, memory=None) -> torch.Tensor:
        """Every position: h [B, T, C] (normed) -> [B, T, C], causal. In the memory block, `memory` is the
        bank read (keys, values, mask from CognateLongTermMemory.tensors) or None while it is empty."""
        b, t, c = h.shape
        heads = lambda x: x.view(b, t, self.num_heads, self.head_dim)  # noqa: E731
        q_raw, k_raw = heads(self.q_proj(h)), heads(self.k_proj(h))
        v = self.v_proj(h)
        if self.v_prev_proj is not None:
            # Value shift: v_t = W_v h_t + W_vp h_{t-1}, h_{-1} = 0 at the segment start.
            v = v + self.v_prev_proj(torch.cat([torch.zeros_like(h[:, :1]), h[:, :-1]], dim=1))
        v = heads(v).transpose(1, 2)  # [B, H, T, D]
        q = apply_rotary(q_raw, cos, sin).transpose(1, 2)
        k = apply_rotary(k_raw, cos, sin).transpose(1, 2)
        mask = torch.full((t, t), mask_value(h.dtype), dtype=h.dtype, device=h.device).triu(1)
        y = attend(q, k, v, mask)  # [B, H, T, D]
        if self.memory_gate is not None and memory is not None:
            read = self.memory_read(q_raw.transpose(1, 2), *memory)  # [B, H, T, D]
            g = torch.sigmoid(self.memory_gate(h)).transpose(1, 2)[..., None]  # [B, H, T, 1]
            mask = memory[2]
            if mask is not None:
                # A row whose stream is empty (it just started a document) reads nothing: its gate is shut
                # (model.ts). Slot 0 is in use iff the row's stream holds entries.
                g = g * (mask[:, :, :, :1] == 0).to(g.dtype).expand(b, -1, -1, -1)
            y = y + (read - y) * g
        return self.o_proj(y.transpose(1, 2).reshape(b, t, c))

    def memory_read(self, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        """kNN attention over the bank (model.ts memoryAttention): q [B, H, T, D] pre-rotary, keys/values
        [Bm, H, S, D] (Bm = B, or 1 shared by every row) -> [B, H, T, D]. Queries and keys compared by cosine;
        each query takes the top-k entries of its own row and head, then softmax(tau_h * cos) over them."""
        b, t = q.shape[0], q.shape[2]
        if keys.shape[0] not in (b, 1):
            raise ValueError(f"memory has {keys.shape[0]} rows, the batch {b}")
        keys, values = keys.expand(b, -1, -1, -1), values.expand(b, -1, -1, -1)
        unit = lambda x: x / torch.sqrt(x.square().sum(-1, keepdim=True) + 1e-12)  # noqa: E731
        q, keys = unit(q), unit(keys)
        k = min(self.top_k, keys.shape[2])
        scores = q.detach() @ keys.detach().transpose(-1, -2)  # [B, H, T, S]
        if mask is not None:
            scores = scores + mask.expand(b, -1, -1, -1)
        indices = torch.topk(scores, k, dim=-1).indices  # [B, H, T, k]; a softmax over them: order is irrelevant
        gather = lambda bank: torch.gather(  # noqa: E731
            bank[:, :, None].expand(-1, -1, t, -1, -1), 3, indices[..., None].expand(-1, -1, -1, -1, bank.shape[-1])
        )  # [B, H, T, k, D]
        k_sel, v_sel = gather(keys), gather(values)
        scale = self.memory_log_scale.exp()[None, :, None, None]  # tau of each head
        logits = (q[..., None, :] * k_sel).sum(-1) * scale  # [B, H, T, k]
        if mask is not None:
            logits = logits + torch.gather(mask.expand(b, self.num_heads, t, -1), 3, indices)
        weights = torch.softmax(logits, dim=-1)
        return (v_sel * weights[..., None]).sum(3)

    def forward_rows(self, h: torch.Tensor, rows: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """Only the query rows `rows` (flat b*T + t, [R]) of h [B, T, C]; keys and values are every position's
        current state, each query seeing its own sequence up to its position (model.ts blockOnRunningRows).
        Not used for the memory block, which always runs on every position."""
        b, t, c = h.shape
        flat = h.reshape(b * t, c)
        positions = torch.arange(b * t, device=h.device) % t
        row_pos = rows % t
        split = lambda x: x.view(-1, self.num_heads, self.head_dim)  # noqa: E731
        q = apply_rotary(split(self.q_proj(flat[rows])), cos[row_pos], sin[row_pos]).transpose(0, 1)  # [H, R, D]
        k = apply_rotary(split(self.k_proj(flat)), cos[positions], sin[positions]).transpose(0, 1)  # [H, B*T, D]
        v = split(self.v_proj(flat)).transpose(0, 1)
        seq = torch.arange(b * t, device=h.device) // t
        visible = (seq[None, :] == (rows // t)[:, None]) & (positions[None, :] <= row_pos[:, None])  # [R, B*T]
        mask = torch.where(visible, 0.0, mask_value(h.dtype)).to(h.dtype)
        y = attend(q, k, v, mask)  # [H, R, D]
        return self.o_proj(y.transpose(0, 1).reshape(-1, c))


class CognateMLP(nn.Module):
    def __init__(self, config: CognateConfig):
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)
        self.down_proj._cognate_residual = True

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        g = self.gate_proj(h)
        return self.down_proj(g * torch.sigmoid(g) * self.up_proj(h))


class CognateBlock(nn.Module):
    def __init__(self, config: CognateConfig, layer: int):
        super().__init__()
        c, eps = config.hidden_size, config.rms_norm_eps
        self.is_memory_block = layer == memory_layer(config)
        self.input_layernorm = CognateRMSNorm(c, eps)
        self.self_attn = CognateSelfAttention(config, self.is_memory_block)
        self.post_attention_layernorm = CognateRMSNorm(c, eps)
        self.mlp = CognateMLP(config)
        # ACT halting unit after every block but the last.
        self.halting = nn.Linear(c, 1) if config.act_enabled and layer < config.num_hidden_layers - 1 else None
        if self.halting is not None:
            # p = 1 / (2 N) at the start: the summed p stays below the threshold, every position runs every block.
            self.halting._cognate_init_bias = -math.log(2 * config.num_hidden_layers - 1)

    def forward(self, x, cos, sin, memory=None):
        """Every position: x [B, T, C] -> [B, T, C]; `memory` is the bank read of the memory block (or None)."""
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, memory)
        return x + self.mlp(self.post_attention_layernorm(x))

    def forward_rows(self, x, rows, cos, sin):
        """Only the positions `rows` (flat indices) run the block; the others keep their state."""
        b, t, c = x.shape
        flat = x.reshape(b * t, c)
        out = flat[rows] + self.self_attn.forward_rows(self.input_layernorm(x), rows, cos, sin)
        out = out + self.mlp(self.post_attention_layernorm(out))
        return flat.index_copy(0, rows, out).view(b, t, c)


class CognateHalting:
    """ACT bookkeeping over depth for one forward (act.ts HaltingAccumulator)."""

    def __init__(self, shape, threshold: float, dtype, device):
        # The threshold has the states' dtype: in float32 the comparison is tfjs's exactly.
        self.threshold = torch.tensor(threshold, dtype=dtype, device=device)
        self.running = torch.ones(shape, dtype=dtype, device=device)  # 1 while the position has not halted
        self.cumulative = torch.zeros(shape, dtype=dtype, device=device)  # sum of p over the blocks that did not halt
        self.remainder = torch.zeros(shape, dtype=dtype, device=device)
        self.steps = torch.zeros(shape, dtype=dtype, device=device)  # blocks run per position
        self.output = None

    def step(self, p: torch.Tensor, state: torch.Tensor, is_last: bool) -> None:
        if is_last:
            reaches = torch.ones_like(self.running)
        else:
            reaches = ((self.cumulative.detach() + p.detach()) >= self.threshold).to(self.running.dtype)
        halts = reaches * self.running
        continues = self.running - halts
        remainder = halts * (1 - self.cumulative)  # R = 1 - sum_{m<n} p_m
        weighted = state * (p * continues + remainder)[..., None]
        self.output = weighted if self.output is None else self.output + weighted
        self.cumulative = self.cumulative + p * continues
        self.remainder = self.remainder + remainder
        self.steps = self.steps + self.running
        self.running = continues


@dataclass
class CognateOutput(ModelOutput):
    loss: Optional[torch.FloatTensor] = None
    logits: Optional[torch.FloatTensor] = None
    last_hidden_state: Optional[torch.FloatTensor] = None  # final normed state [B, T, C]
    # ponder_cost * mean(N + R), over every position, or with labels over the scored ones; 0 without ACT
    ponder_cost: Optional[torch.FloatTensor] = None
    act_steps: Optional[torch.FloatTensor] = None  # blocks run per position [B, T]
    act_ponder: Optional[torch.FloatTensor] = None  # N + R per position [B, T]; None without ACT


class CognatePreTrainedModel(PreTrainedModel):
    config_class = CognateConfig
    base_model_prefix = "model"
    _no_split_modules = ["CognateBlock"]

    @torch.no_grad()
    def _init_weights(self, module):
        """Random init of a fresh model, as model.ts: N(0, 0.02), residual writes 0.02 / sqrt(2 N), norms 1,
        halting bias -log(2N - 1) so every position starts at full depth; in the memory block tau = 10 and the
        query projection a copy of the key projection (a token's query finds its own entries from the start)."""
        std = self.config.initializer_range
        n = self.config.num_hidden_layers
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, std / math.sqrt(2 * n) if getattr(module, "_cognate_residual", False) else std)
            if module.bias is not None:
                nn.init.constant_(module.bias, getattr(module, "_cognate_init_bias", 0.0))
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, 0.0, std)
        elif isinstance(module, CognateRMSNorm):
            nn.init.ones_(module.weight)
        elif isinstance(module, CognateSelfAttention) and module.memory_log_scale is not None:
            nn.init.constant_(module.memory_log_scale, math.log(10.0))
            module.q_proj.weight.copy_(module.k_proj.weight)  # children are initialised first


class CognateModel(CognatePreTrainedModel):
    """Embedding, blocks with ACT, final norm; holds the long-term memory bank."""

    def __init__(self, config: CognateConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList([CognateBlock(config, i) for i in range(config.num_hidden_layers)])
        self.norm = CognateRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.memory = CognateLongTermMemory(config) if config.mem_enabled else None
        self.post_init()

    def forward(self, input_ids: torch.LongTensor, attention_mask: Optional[torch.Tensor] = None, **kwargs):
        c = self.config
        if input_ids is None:
            raise ValueError("CognateModel needs input_ids (inputs_embeds are not supported)")
        if attention_mask is not None and not bool((attention_mask != 0).all()):
            raise ValueError(
                "CognateModel: attention_mask has padding (zeros). The model has no padding support, as in tfjs: "
                "pass unpadded sequences of equal length (or one sequence at a time)."
            )
        b, t = input_ids.shape
        if t > c.max_position_embeddings:
            raise ValueError(f"sequence length {t} exceeds max_position_embeddings {c.max_position_embeddings}")
        x = self.embed_tokens(input_ids)  # [B, T, C]
        cos, sin = (r.to(x.dtype) for r in rotary_tables(t, c.hidden_size // c.num_attention_heads, c.rope_theta, x.device))
        act = CognateHalting((b, t), c.act_threshold, x.dtype, x.device) if c.act_enabled else None
        bank = self.memory.tensors(b, x.dtype) if self.memory is not None else None
        n = len(self.layers)
        for i, block in enumerate(self.layers):
            if block.is_memory_block:
                # The memory block runs on every position (tfjs writes its entries for all of them); halted
                # positions keep their state, in training and inference alike.
                out = block(x, cos, sin, bank)
                x = out if act is None else torch.where(act.running[..., None] > 0, out, x)
                if bank is not None:
                    self.memory.count_reads(b * t * c.num_attention_heads)
            elif act is None:
                x = block(x, cos, sin)
            elif self.training:
                # Every position runs (differentiable ACT), halted positions keep their state.
                x = torch.where(act.running[..., None] > 0, block(x, cos, sin), x)
            else:
                rows = torch.nonzero(act.running.reshape(-1) > 0).squeeze(1)
                if rows.numel() == b * t:
                    x = block(x, cos, sin)
                else:
                    x = block.forward_rows(x, rows, cos, sin)  # halted positions skip the block
            if act is not None:
                last = i == n - 1
                p = torch.sigmoid(block.halting(x)).squeeze(-1) if block.halting is not None else torch.zeros_like(act.running)
                act.step(p, x, last)
                if not self.training and not last and not bool((act.running > 0).any()):
                    break  # every position halted
        if act is not None:
            state = act.output
            per_position = act.steps + act.remainder
            ponder = per_position.mean() * c.ponder_cost
            steps = act.steps
        else:
            state = x
            per_position = None
            ponder = torch.zeros((), dtype=x.dtype, device=x.device)
            steps = torch.full((b, t), float(n), dtype=x.dtype, device=x.device)
        return CognateOutput(last_hidden_state=self.norm(state), ponder_cost=ponder, act_steps=steps, act_ponder=per_position)


class CognateForCausalLM(CognatePreTrainedModel, GenerationMixin):
    def __init__(self, config: CognateConfig):
        super().__init__(config)
        self.model = CognateModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        return False  # no KV cache: see the module docstring

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def set_input_embeddings(self, value):
        self.model.embed_tokens = value

    def get_output_embeddings(self):
        return self.lm_head

    def forward(
        self,
        input_ids: torch.LongTensor = None,
        attention_mask: Optional[torch.Tensor] = None,
        labels: Optional[torch.LongTensor] = None,
        return_dict: Optional[bool] = None,
        **kwargs,
    ):
        """logits [B, T, V]; with labels (the input ids, shifted here; -100 ignored) loss = CE + ponder cost,
        as model.ts loss() with a mask: the ponder cost is charged at the positions whose next label is
        scored only, so padding labelled -100 pays for no depth."""
        out = self.model(input_ids, attention_mask=attention_mask)
        logits = self.lm_head(out.last_hidden_state)
        loss = None
        ponder = out.ponder_cost
        if labels is not None:
            shifted = labels[:, 1:].to(logits.device)
            ce = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), shifted.reshape(-1), ignore_index=-100)
            if out.act_ponder is not None:
                scored = (shifted != -100).to(out.act_ponder.dtype)  # position t is scored by label t + 1
                ponder = (out.act_ponder[:, :-1] * scored).sum() / scored.sum().clamp(min=1) * self.config.ponder_cost
            loss = ce + ponder
        result = CognateOutput(
            loss=loss,
            logits=logits,
            last_hidden_state=out.last_hidden_state,
            ponder_cost=ponder,
            act_steps=out.act_steps,
            act_ponder=out.act_ponder,
        )
        return result if return_dict is not False else result.to_tuple()

    def prepare_inputs_for_generation(self, input_ids, attention_mask=None, **kwargs):
        # The whole sequence every step (no cache): exact, see the module docstring.
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """The weights as any model, then the LTM bank from the export's ltm.safetensors."""
        model = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        if model.model.memory is not None:
            name = model.config.ltm_file or "ltm.safetensors"
            local = os.path.join(str(pretrained_model_name_or_path), name)
            if os.path.isdir(str(pretrained_model_name_or_path)):
                if not os.path.isfile(local):
                    raise FileNotFoundError(f"{local}: the LTM bank is missing (config mem_enabled is true)")
                path = local
            else:
                from transformers.utils import cached_file

                hub = {k: kwargs[k] for k in ("cache_dir", "revision", "token", "local_files_only", "subfolder") if k in kwargs}
                path = cached_file(pretrained_model_name_or_path, name, **hub)
            model.model.memory.load(path)
        return model

    def save_pretrained(self, save_directory, *args, **kwargs):
        super().save_pretrained(save_directory, *args, **kwargs)
        if self.model.memory is not None:
            self.model.memory.save(os.path.join(save_directory, self.config.ltm_file or "ltm.safetensors"))


__all__ = ["CognateConfig", "CognateForCausalLM", "CognateLongTermMemory", "CognateModel", "CognatePreTrainedModel"]
