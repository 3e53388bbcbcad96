"""bench:act's task trained with the PyTorch port of the Cognate model (hf/modeling_cognate.py: the same blocks,
ACT and ponder cost as model.ts), to explore settings fast, on a GPU or on the CPU (about 4x faster per step
than tfjs here at this size). Its numbers are the port's, not the product's: bench/act.ts (tfjs, native)
confirms what is reported as bench:act. Differences from bench/act.ts: numpy data with its own seeds (the
same task; a held-out fifth of the cycles too, but chosen by its own hash, so not the same cycles),
torch.optim.AdamW (per-parameter step counts), and the arms run one after another in one process and print
one JSON line each.

  --multi 1        bench/act.ts's layout: all queries HOP_1..HOP_H of one x after the pairs, each scored;
                   0: the first version's one query HOP_h.x per example (h uniform, or --hop-probs)
  --halt-freeze F  the halting units get no gradient until F of the steps (bench/act.ts --halting-frozen)
  --halt-bias B    the halting units' initial bias (0: the model's -log(2N - 1), p = 1/(2N)); bench/act.ts
                   --halting-init p sets log(p / (1 - p))
  --halt-final F   the halting units get no gradient again from F of the steps
  --cosine 1       learning rate cosine-decayed to 0 over the steps (bench/act.ts keeps it constant)
  --halt-detach 1  the halting units read the states through a stop-gradient: the ponder cost trains them only,
                   not the blocks (bench/act.ts --halting-detached 1)
  --act-threshold  the halting threshold 1 - eps (default 0.99; bench/act.ts --act-threshold)
  --deep A         adds A * sum_n w_n CE(block n's own state) with ACT's halting weights w (per-block supervision)
  --ponder-scored 1  the ponder cost averaged over the scored positions (the queries) only, not the pairs
  --diag 1         also reports, per hop count, the accuracy of the halting block's own state and its weight R
  --arms act,full  ACT with --layers blocks, fixed --layers blocks; --fixed 2,3 adds fixed arms of those depths

  THREADS=1 python3 bench/act_port_sweep.py --multi 1 --steps 6000 --symbols 12 --cycle 7 --hops 3 --batch 128 \
      --layers 4 --ponder-start 0.5 --ponder-ramp 0.2 --halt-freeze 0.5 --tau 0.05 --arms act [--device cuda]
Results of the runs behind README's bench:act row: bench/results/act-port-sweep.json.
"""
import argparse, json, math, sys, time, os
import numpy as np
import torch
import torch.nn.functional as F
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'activities', 'cognate', 'engine'))
from hf.configuration_cognate import CognateConfig
from hf.modeling_cognate import CognateForCausalLM, CognateHalting

# --deep, --ponder-scored and --diag need each block's state, its halting weight w (p_n before the halting
# block, R at it) and its remainder R (0 where the position did not halt there). While TRACING is on, every
# forward appends them here (the caller clears it); otherwise nothing is kept, so the other flags hold no
# per-block states.
TRACE = []
TRACING = False
_step = CognateHalting.step
def _traced_step(self, p, state, is_last):
    if not TRACING: return _step(self, p, state, is_last)
    running, cumulative = self.running, self.cumulative  # step() rebinds both rather than changing them in place
    _step(self, p, state, is_last)
    remainder = (running - self.running) * (1 - cumulative)
    TRACE.append((state, p * self.running + remainder, remainder))
CognateHalting.step = _traced_step

def cycles(rng, B, symbols, n, held_out):
    out_order = np.zeros((B, n), np.int64); nxt = np.full((B, symbols), -1, np.int64)
    i = 0
    while i < B:
        m = max(8, 2 * (B - i))
        order = np.argsort(rng.random((m, symbols)), axis=1)[:, :n]
        start = order.argmin(1)
        canon = np.stack([np.roll(order[j], -start[j]) for j in range(m)])
        h = (canon * (symbols ** np.arange(n))).sum(1) * 2654435761 % 4294967296
        keep = ((h % 5) == 0) == held_out
        order = order[keep][: B - i]
        k = len(order)
        out_order[i:i+k] = order
        for j in range(k):
            nxt[i+j, order[j]] = np.roll(order[j], -1)
        i += k
    return out_order, nxt

def batch(rng, B, a, held_out, stratified=False, hop_probs=None):
    S, n, H = a.symbols, a.cycle, a.hops
    order, nxt = cycles(rng, B, S, n, held_out)
    if stratified: hops = (np.arange(B) % H) + 1
    elif hop_probs is not None: hops = rng.choice(np.arange(1, H+1), size=B, p=hop_probs)
    else: hops = rng.integers(1, H+1, B)
    x = order[np.arange(B), rng.integers(0, n, B)]
    members = np.stack([rng.permutation(row) for row in order])
    pairs = members * S + nxt[np.arange(B)[:, None], members]
    if a.multi:
        qs = S * S + np.arange(H)[None, :] * S + x[:, None]  # [B, H]
        inp = np.concatenate([pairs, qs], 1)
        ys = []; y = x.copy()
        for s in range(H):
            y = nxt[np.arange(B), y]; ys.append(y.copy())
        return torch.tensor(inp), torch.tensor(np.stack(ys, 1)), np.tile(np.arange(1, H + 1), (B, 1))
    q = S * S + (hops - 1) * S + x
    inp = np.concatenate([pairs, q[:, None]], 1)
    y = x.copy()
    for s in range(H):
        step = hops > s
        y[step] = nxt[np.arange(B), y][step]
    return torch.tensor(inp), torch.tensor(y)[:, None], hops[:, None]

def run(a, layers, act, seed, dev):
    torch.manual_seed(10 + seed)
    V = max(16, a.symbols**2 + a.hops*a.symbols)
    cfg = CognateConfig(vocab_size=V, hidden_size=a.width, num_hidden_layers=layers, num_attention_heads=4, intermediate_size=a.ffn,
                        max_position_embeddings=max(8, a.cycle+a.hops), act_enabled=act, act_threshold=a.act_threshold, ponder_cost=a.tau, mem_enabled=False)
    model = CognateForCausalLM(cfg).to(dev).train()
    if act and a.halt_bias:
        for layer in model.model.layers:
            if getattr(layer, 'halting', None) is not None: torch.nn.init.constant_(layer.halting.bias, a.halt_bias)
    if act and a.halt_detach:
        # the halting units read the states without passing gradient into them: the ponder cost trains only the
        # halting units, not the blocks' features
        for layer in model.model.layers:
            if getattr(layer, 'halting', None) is not None: layer.halting.register_forward_pre_hook(lambda m, inp: (inp[0].detach(),))
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.98), eps=1e-8, weight_decay=0)
    rng = np.random.default_rng(100 + seed)
    probs = None
    if a.hop_probs: probs = np.array([float(v) for v in a.hop_probs.split(',')]); probs /= probs.sum()
    t0 = time.time()
    for step in range(a.steps):
        decay = 0.5 * (1 + math.cos(math.pi * step / a.steps)) if a.cosine else 1.0
        for g in opt.param_groups: g['lr'] = a.lr * min(1, (step+1)/100) * decay
        inp, y, _ = batch(rng, a.batch, a, False, hop_probs=probs)
        inp, y = inp.to(dev), y.to(dev)
        TRACE.clear()
        out = model.model(inp)
        k = y.shape[1]
        logits = model.lm_head(out.last_hidden_state[:, -k:])
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        scale = min(1.0, max(0.0, (step/a.steps - a.ponder_start) / max(1e-9, a.ponder_ramp)))
        ponder = out.ponder_cost
        if act and a.ponder_scored:
            # N + R averaged over the scored positions only (the queries), not over the pairs
            ponder = a.tau * (out.act_steps[:, -k:] + sum(r[:, -k:] for _, _, r in TRACE)).mean()
        loss = ce + ponder * scale
        if act and a.deep:
            # sum_n w_n * CE(head(norm(s_n))) at the queries: each block's prediction is scored on its own,
            # so the halting weights get a gradient towards the blocks whose own prediction is good.
            deep = 0
            for s_n, w_n, _ in TRACE:
                ce_n = F.cross_entropy(model.lm_head(model.model.norm(s_n[:, -k:])).reshape(-1, logits.shape[-1]), y.reshape(-1), reduction='none')
                deep = deep + (w_n[:, -k:].reshape(-1) * ce_n).mean()
            loss = loss + a.deep * deep
        opt.zero_grad(); loss.backward()
        if step < a.halt_freeze * a.steps or (a.halt_final and step >= a.halt_final * a.steps):
            for n_, p_ in model.named_parameters():
                if '.halting.' in n_: p_.grad = None
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if a.log and (step+1) % a.log == 0: print(f'  {layers}{"A" if act else "F"} step {step+1} ce {ce.item():.3f}', file=sys.stderr, flush=True)
    model.eval()
    rng = np.random.default_rng(200 + seed)
    with torch.no_grad():
        inp, y, hops = batch(rng, a.eval, a, True, stratified=True)
        out = model.model(inp.to(dev))
        k = y.shape[1]
        pred = model.lm_head(out.last_hidden_state[:, -k:]).argmax(-1).cpu()
        depth = out.act_steps[:, -k:].cpu().numpy()
    ok = (pred == y).numpy()
    by = {int(h): (float(ok[hops == h].mean()), float(depth[hops == h].mean())) for h in range(1, a.hops+1)}
    extra = {}
    if act and a.diag:
        # The halting block's own state (not the mixture) as the output, and the weight R it gets in the mixture.
        TRACE.clear(); model.train()
        with torch.no_grad():
            out = model.model(inp.to(dev))
            last = torch.zeros_like(TRACE[0][0][:, -k:]); r = torch.zeros_like(TRACE[0][2][:, -k:])
            taken = torch.zeros_like(r, dtype=torch.bool)
            for i, (s_n, _, r_n) in enumerate(TRACE):
                halts = (r_n[:, -k:] != 0) if i < len(TRACE) - 1 else torch.ones_like(taken)
                take = halts & ~taken
                last = torch.where(take[..., None], s_n[:, -k:], last); r = torch.where(take, r_n[:, -k:], r); taken = taken | take
            pred_last = model.lm_head(model.model.norm(last)).argmax(-1).cpu()
        ok_last = (pred_last == y).numpy(); rr = r.cpu().numpy()
        extra = {'byHopsLastState': {int(h): (float(ok_last[hops == h].mean()), float(rr[hops == h].mean())) for h in range(1, a.hops+1)}}
    return dict(layers=layers, act=act, acc=float(ok.mean()), depth=float(depth.mean()), byHops=by, secs=time.time()-t0, ce=ce.item(), **extra)

if __name__ == '__main__':
    p = argparse.ArgumentParser()
    for k, v in dict(steps=2500, layers=5, symbols=10, cycle=5, hops=3, width=64, ffn=128, batch=64, eval=1500, seed=0).items(): p.add_argument('--'+k, type=int, default=v)
    for k, v in dict(tau=0.05, lr=3e-3, ponder_start=0.3, ponder_ramp=0.3).items(): p.add_argument('--'+k.replace('_','-'), dest=k, type=float, default=v)
    p.add_argument('--arms', default='act,full'); p.add_argument('--multi', type=int, default=0); p.add_argument('--halt-freeze', dest='halt_freeze', type=float, default=0); p.add_argument('--halt-final', dest='halt_final', type=float, default=0); p.add_argument('--halt-bias', dest='halt_bias', type=float, default=0); p.add_argument('--cosine', type=int, default=0); p.add_argument('--hop-probs', default=''); p.add_argument('--log', type=int, default=0)
    p.add_argument('--fixed', default=''); p.add_argument('--device', default='cpu'); p.add_argument('--tag', default='')
    p.add_argument('--deep', type=float, default=0); p.add_argument('--ponder-scored', dest='ponder_scored', type=int, default=0); p.add_argument('--diag', type=int, default=0); p.add_argument('--halt-detach', dest='halt_detach', type=int, default=0); p.add_argument('--act-threshold', dest='act_threshold', type=float, default=0.99)
    a = p.parse_args()
    torch.set_num_threads(int(os.environ.get('THREADS', '2')))
    TRACING = bool(a.deep or a.ponder_scored or a.diag)
    jobs = ([('act', a.layers, True)] if 'act' in a.arms else []) + ([('full', a.layers, False)] if 'full' in a.arms else [])
    jobs += [(f'fixed{L}', L, False) for L in [int(v) for v in a.fixed.split(',') if v]]
    for name, L, act in jobs:
        r = run(a, L, act, a.seed, a.device)
        print(json.dumps({'tag': a.tag, 'arm': name, **r}), flush=True)
