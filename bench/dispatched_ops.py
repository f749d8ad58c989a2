"""What tracing adds to a denoising step of every family's tiny pipeline, in operations dispatched:
deterministic, so it can be asserted in a test and tracked, unlike time on a shared machine.

    python bench/dispatched_ops.py [--pipelines sd2,flux] [--verbose]

On a GPU at the sizes people use, a traced generation waits on kernel launches and Python dispatch more
than on arithmetic, so the operations the tracer adds are what it costs there. torch.profiler on the CPU
records every aten operation a call dispatches (nested ones included). The figure is the growth of what a
traced call dispatches beyond an untraced one from a 2- to a 3-step call: what a trace adds to a step,
apart from what it costs once per call. Columns: every layer traced, the first layer alone (a layer that
joins a batch of layers of its shape adds only its share of two concatenations), the widget's trace
(``per_step=True``), and ``softmax_over="all"``.
"""

from __future__ import annotations

import argparse

import torch

from daam_widget import trace
from daam_widget.testing import PIPELINES, extra_ops_per_step


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pipelines", default=",".join(PIPELINES), help="from: " + ", ".join(PIPELINES))
    parser.add_argument("--verbose", action="store_true", help="also list the operations a step adds")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"{'pipeline':<14} {'layers':>6} {'per step':>8} {'one layer':>9} {'per_step=True':>13} "
        f"{'all':>6} {'per generation':>14}"
    )
    for name in args.pipelines.split(","):
        pipe = PIPELINES[name]()
        pipe.set_progress_bar_config(disable=True)
        every = extra_ops_per_step(pipe, name)
        one = extra_ops_per_step(pipe, name, layers=trace(pipe).layer_names[:1])
        widget = extra_ops_per_step(pipe, name, per_step=True)
        shared = extra_ops_per_step(pipe, name, softmax_over="all")
        layers = every["layer_calls_per_step"]
        print(
            f"{name:<14} {layers:>6} {every['per_step']:>8.0f} {one['per_step']:>9.0f} "
            f"{widget['per_step']:>13.0f} {shared['per_step']:>6.0f} {every['per_generation']:>14.0f}",
            flush=True,
        )
        if args.verbose:
            print("    " + ", ".join(f"{op} {n:g}" for op, n in every["ops"].items()))


if __name__ == "__main__":
    main()
