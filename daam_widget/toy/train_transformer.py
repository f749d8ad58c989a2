"""Train the toy transformer: ``python -m daam_widget.toy.train_transformer [--seed 0] [--steps N]``.

A ``FluxTransformer2DModel`` and its two text encoders (CLIP for the pooled vector, T5 for the tokens),
trained jointly by rectified flow (Flux's objective: the velocity ``noise - x0`` at ``x_t = (1 - s) x0 +
s noise``, ``s`` logit-normal as in SD3) on the latents of ``--scenes`` training scenes, encoded by the
toy UNet's shipped VAE (frozen). A new true caption is drawn for each use, 10% of captions are empty (for
guidance), and an exponential moving average of the weights is what is saved.

Nothing teaches attention where objects are: the loss is the denoising loss alone. One thing is withheld:
for a ``--pooled-dropout`` share of captions the pooled CLIP vector is the empty prompt's. Flux adds that
vector to every image token's modulation, so a model that read the objects from it would have no reason
to look at the words; the words' maps are what this toy is for. The pipeline is unchanged: at inference
the pooled vector is the caption's.

Checkpoints (full pipeline folders) go to ``--out`` every ``--every`` steps; ``--install`` copies the
final pipeline into the package.
"""

from __future__ import annotations

import argparse
import copy
import time
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import _flux_model, _model
from ._world import SIZE, describe
from .train import _cosine, _save, _share, add_run_arguments, encode_scenes, install, start_run, update_ema


def _packing(pipe_class: Any, latents: torch.Tensor) -> torch.Tensor:
    batch, channels, height, width = latents.shape
    return pipe_class._pack_latents(latents, batch, channels, height, width)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(
        parser,
        steps=18_000,
        lr=5e-4,
        out="artifacts/toy-flux-run",
        models="the transformer and text encoders",
    )
    parser.add_argument(
        "--pooled-dropout",
        type=_share,
        default=0.5,
        help="share of captions whose pooled CLIP vector is the empty prompt's",
    )
    args = parser.parse_args(argv)
    rng, started, info = start_run(args)

    toy_unet: Any = _model.load_pipeline("sd")
    vae = toy_unet.vae.requires_grad_(False)
    latents, objects = encode_scenes(vae, args.scenes)
    shift, scale = float(latents.mean()), float(1 / latents.std())
    vae.register_to_config(shift_factor=shift, scaling_factor=scale)
    latents = (latents - shift) * scale

    clip_tok, t5_tok = _model.tokenizer(), _flux_model.t5_tokenizer()
    clip: Any
    t5: Any
    transformer: Any
    if args.init is not None:
        start: Any = _model.load_pipeline("flux", path=args.init)
        clip, t5, transformer = start.text_encoder, start.text_encoder_2, start.transformer
    else:
        clip, t5 = _model.text_encoder(len(clip_tok)), _flux_model.t5_encoder(len(t5_tok))
        transformer = _flux_model.transformer()
    models = [clip, t5, transformer]
    for model in models:
        model.train()
    ema = [copy.deepcopy(m).eval().requires_grad_(False) for m in models]
    params = [p for m in models for p in m.parameters()]
    info["parameters"] = {type(m).__name__: sum(p.numel() for p in m.parameters()) for m in models}
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)

    pipe_class = _flux_model.FluxPipeline
    grid = latents.shape[2] // 2
    image_ids = pipe_class._prepare_latent_image_ids(1, grid, grid, "cpu", torch.float32)
    text_ids = torch.zeros(_flux_model.MAX_TOKENS, 3)
    window = {"padding": "max_length", "max_length": _flux_model.MAX_TOKENS, "truncation": True}
    empty_clip = clip_tok([""], return_tensors="pt", **window).input_ids
    bar = tqdm(range(1, args.steps + 1), desc="transformer", mininterval=10)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = args.lr * _cosine(step - 1, args.steps, 200)
        index = torch.from_numpy(rng.integers(0, len(latents), args.batch))
        captions = [describe(objects[i], rng) if rng.random() >= 0.1 else "" for i in index.tolist()]
        pooled = clip(clip_tok(captions, return_tensors="pt", **window).input_ids).pooler_output
        dropped = torch.from_numpy(rng.random(args.batch) < args.pooled_dropout)
        pooled = torch.where(dropped[:, None], clip(empty_clip).pooler_output, pooled)
        states = t5(t5_tok(captions, return_tensors="pt", **window).input_ids).last_hidden_state
        x0 = latents[index]
        noise = torch.randn_like(x0)
        s = torch.sigmoid(torch.randn(args.batch))
        xt = (1 - s.view(-1, 1, 1, 1)) * x0 + s.view(-1, 1, 1, 1) * noise
        velocity = transformer(
            hidden_states=_packing(pipe_class, xt),
            encoder_hidden_states=states,
            pooled_projections=pooled,
            timestep=s,
            img_ids=image_ids,
            txt_ids=text_ids,
        ).sample
        loss = F.mse_loss(velocity, _packing(pipe_class, noise - x0))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        update_ema(ema, models, step)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
        if step % args.every == 0 or step == args.steps:
            info.update(steps=step, minutes=round((time.time() - started) / 60, 1), image_size=SIZE)
            pipe = _flux_model.assemble(vae, ema[2], ema[0], ema[1], clip_tok)
            _save(pipe, args.out / "checkpoint", info)
    install(args.out, _flux_model.WEIGHTS if args.install else None)
    print(f"done: {args.steps} steps in {(time.time() - started) / 60:.1f} min -> {args.out / 'final'}")


if __name__ == "__main__":
    main()
