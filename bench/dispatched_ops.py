"""What tracing adds per traced attention-layer call, in operations dispatched: deterministic, so it can
be asserted in a test and tracked, unlike time on a shared machine.

    python bench/dispatched_ops.py                  # every family's tiny pipeline, both softmax modes

The last column traces with the per-step record (``per_step=True``, the widget's trace): one ``add_`` per
layer call, and a few operations per resolution and step when a step is stored.

On a GPU at the sizes people use, a traced generation waits on kernel launches and Python dispatch more
than on arithmetic, so the operations the tracer adds are what it costs there. torch.profiler on the CPU
records every aten operation a call dispatches (nested ones included). The figure is the marginal cost:
the extra operations of a traced call over an untraced one grow by the same amount with each step; that
growth with every layer traced, less the growth with one layer traced, divided by the layer calls that
makes, is what each traced layer call adds. What a trace costs once per step besides the layer calls
(reading the denoiser call, a mask) and once per generation (hooks, the text encoders' outputs) is
reported apart: on a tiny pipeline of 2 to 7 layers it would otherwise look like a per-layer cost.
"""

from __future__ import annotations

import argparse

import torch

from daam_widget.testing import PIPELINES, extra_ops_per_layer_call


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pipelines", default=",".join(PIPELINES), help="from: " + ", ".join(PIPELINES))
    parser.add_argument("--verbose", action="store_true", help="also list the extra ops of a layer call")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"{'pipeline':<12} {'softmax_over':<12} {'layers':>6} {'per layer call':>14} {'per step':>8} "
        f"{'per generation':>14} {'per_step=True':>13}"
    )
    for name in args.pipelines.split(","):
        pipe = PIPELINES[name]()
        pipe.set_progress_bar_config(disable=True)
        for mode in ("text", "all"):
            r = extra_ops_per_layer_call(pipe, name, mode)
            widget = extra_ops_per_layer_call(pipe, name, mode, per_step=True)
            print(
                f"{name:<12} {mode:<12} {r['layer_calls_per_step']:>6} {r['per_layer_call']:>14.1f} "
                f"{r['per_step']:>8.1f} {r['per_generation']:>14.0f} {widget['per_layer_call']:>13.1f}"
            )
            if args.verbose:
                print("         " + ", ".join(f"{op} {n:g}" for op, n in r["ops"].items()))


if __name__ == "__main__":
    main()
