#!/usr/bin/env python3
"""Load an exported Cognate model with transformers (trust_remote_code) and compare it with tfjs.

usage: check_cognate_hf.py <export_dir> <reference_dir> [--tolerance 1e-4]

<reference_dir> holds reference.json and its logits file, written by scripts/cognate-hf-parity.ts from the
tfjs model the export came from. Checks, in order:
  logits      AutoModelForCausalLM in eval mode on the same token ids: max |torch - tfjs| <= tolerance
  act_steps   blocks run per position equal tfjs's (ACT halts the same positions after the same blocks)
  ltm         the bank loaded from ltm.safetensors (cognate-ltm/2) has tfjs's per-stream fill and FIFO position,
              and after that forward its read counter equals tfjs's (the memory block read the bank as often)
  train_mode  model.train() (every block on every position, halted ones masked) gives the same logits
  loss_masked in train mode with labels -100 over the last row's second half, the loss (CE + ponder cost
              charged at the scored positions only) equals tfjs's model.loss with the same mask
  generate    model.generate(greedy) from row 0 produces tfjs's greedy tokens
  save_reload save_pretrained then from_pretrained again gives bit-identical logits
and reports two ablations, which a faithful port must be far from (they show the test exercises the
memory read and ACT): the logits with the bank emptied, and with ACT switched off. The PyTorch memory is
read-only: a forward never writes to the bank (tfjs writes it while training).
Prints one JSON object; exit 0 when every check passes, 1 when one fails, 2 on unusable input.
"""
import argparse
import json
import os
import sys
import tempfile


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export_dir")
    parser.add_argument("reference_dir")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args()

    import numpy as np
    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    summary = {"ok": False, "export_dir": os.path.abspath(args.export_dir), "transformers": transformers.__version__, "torch": torch.__version__}
    try:
        with open(os.path.join(args.reference_dir, "reference.json"), encoding="utf-8") as f:
            ref = json.load(f)
        shape = tuple(ref["logits_shape"])
        expected = np.fromfile(os.path.join(args.reference_dir, ref["logits_file"]), dtype="<f4")
        if expected.size != int(np.prod(shape)):
            raise ValueError(f"{ref['logits_file']} holds {expected.size} floats, reference.json says {shape}")
        expected = torch.from_numpy(expected.reshape(shape).copy())
        ids = torch.tensor(ref["input_ids"], dtype=torch.long)
    except (OSError, KeyError, ValueError) as e:
        summary["error"] = f"unusable reference: {type(e).__name__}: {e}"
        print(json.dumps(summary))
        return 2

    failures = []

    def check(name, ok, **details):
        summary[name] = {"ok": bool(ok), **details}
        if not ok:
            failures.append(name)

    config = AutoConfig.from_pretrained(args.export_dir, trust_remote_code=True)
    model = AutoModelForCausalLM.from_pretrained(args.export_dir, trust_remote_code=True)
    model.eval()
    summary["class"] = f"{type(model).__module__}.{type(model).__name__}"
    summary["config_class"] = type(config).__name__
    summary["parameters"] = sum(p.numel() for p in model.parameters())
    summary["ltm_fill"] = model.model.memory.size if model.model.memory is not None else None

    with torch.no_grad():
        out = model(input_ids=ids)
    diff = (out.logits - expected).abs().max().item()
    check("logits", diff <= args.tolerance, max_abs_diff=diff, tolerance=args.tolerance, logits_abs_max=expected.abs().max().item())

    steps = out.act_steps.reshape(-1).tolist()
    check("act_steps", steps == [float(s) for s in ref["act_steps"]], torch_mean=sum(steps) / len(steps), tfjs_mean=ref["mean_depth"], distinct=sorted(set(steps)))

    memory = model.model.memory
    if memory is not None:
        fill, nxt, reads = memory.fill.tolist(), memory.next.tolist(), memory.stats.get("reads", 0)
        check("ltm", fill == ref["ltm_fill"] and nxt == ref["ltm_next"] and reads == ref["ltm_reads_after"],
              fill=fill, tfjs_fill=ref["ltm_fill"], next=nxt, tfjs_next=ref["ltm_next"], reads=reads, tfjs_reads=ref["ltm_reads_after"],
              mem_layer=model.config.mem_layer, tfjs_mem_layer=ref["mem_layer"])

    with torch.no_grad():
        model.train()
        train_logits = model(input_ids=ids).logits
        model.eval()
    train_diff = (train_logits - expected).abs().max().item()
    check("train_mode", train_diff <= args.tolerance, max_abs_diff=train_diff)

    if "train_loss" in ref:
        labels = torch.tensor(ref["labels"], dtype=torch.long)
        with torch.no_grad():
            model.train()
            trained = model(input_ids=ids, labels=labels)
            model.eval()
        want = ref["train_loss"]
        loss_diff = abs(trained.loss.item() - want["loss"])
        ponder_all = (trained.act_ponder.mean() * model.config.ponder_cost).item() if trained.act_ponder is not None else 0.0
        check("loss_masked", loss_diff <= args.tolerance, max_abs_diff=loss_diff, torch=trained.loss.item(), tfjs=want["loss"],
              ponder_cost=trained.ponder_cost.item(), tfjs_ponder_cost=want["ponderCost"], ponder_cost_all_positions=ponder_all)

    n = len(ref["generated"])
    if n > 0:
        prompt = ids[:1]
        with torch.no_grad():
            generated = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0)
        tokens = generated[0, prompt.shape[1]:].tolist()
        check("generate", tokens == ref["generated"], torch=tokens, tfjs=ref["generated"])

    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        again = AutoModelForCausalLM.from_pretrained(tmp, trust_remote_code=True).eval()
        with torch.no_grad():
            reload_diff = (again(input_ids=ids).logits - model(input_ids=ids).logits).abs().max().item()
        check("save_reload", reload_diff == 0, max_abs_diff=reload_diff, files=sorted(os.listdir(tmp)))

    ablations = {}
    with torch.no_grad():
        if memory is not None:
            fill = memory.fill
            memory.fill = torch.zeros_like(fill)
            ablations["no_memory_max_abs_diff"] = (model(input_ids=ids).logits - expected).abs().max().item()
            memory.fill = fill
        if model.config.act_enabled:
            model.config.act_enabled = False
            ablations["no_act_max_abs_diff"] = (model(input_ids=ids).logits - expected).abs().max().item()
            model.config.act_enabled = True
    summary["ablations"] = ablations

    summary["failures"] = failures
    summary["ok"] = not failures
    print(json.dumps(summary))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
