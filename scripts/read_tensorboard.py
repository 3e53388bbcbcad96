#!/usr/bin/env python3
"""Print the scalar summaries of a TensorBoard run directory as JSON: {tag: [[step, value, wall_time], ...]}.

Reads with TensorBoard's own EventAccumulator (the loader `tensorboard --logdir` uses), so a file it accepts
here is a file TensorBoard shows. Usage: python3 scripts/read_tensorboard.py <run dir>
"""
import json
import sys

from tensorboard.backend.event_processing import event_accumulator


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: read_tensorboard.py <run dir with events.out.tfevents.* files>")
    acc = event_accumulator.EventAccumulator(sys.argv[1], size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    out = {tag: [[e.step, e.value, e.wall_time] for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
