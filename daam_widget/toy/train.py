"""Train the toy model from scratch: ``python -m daam_widget.toy.train [--seed 0] [--steps N]``.

Two stages, both reproducible from ``--seed`` (for a given ``--threads``):

1. the AutoencoderKL on freshly drawn scenes (MSE + L1 + a tiny KL term);
2. the UNet and the CLIP text encoder jointly on the latents of ``--scenes`` training scenes, with a new
   true caption drawn for every scene each time it is used, 10% empty captions (for guidance), the
   grounding loss and summary dropout (below) and an exponential moving average of the weights, which is
   what is saved.

Grounding (``--grounding``, ``_grounding``): the loss also counts, for every noun of a caption and every
cross-attention layer, how far the noun's attention map is from its object's shape (a KL divergence), so
the toy's nouns localise.

Summary dropout: the causal text encoder writes the whole caption into the EOS and padding states, and a
UNet that reads every object from that summary has no reason to look at the words, so DAAM maps stay
diffuse. For a ``--summary-dropout`` share of captions the states from EOS on are replaced by those of the
empty prompt, which hold nothing about the caption: the UNet must find each object through its own words.
The pipeline is unchanged; at inference the encoder's states are used as they are.

Checkpoints (full pipeline folders) are written to ``--out`` every ``--every`` steps, so a run cut off
early still leaves usable weights; ``--install`` copies the final pipeline into the package.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import _model
from ._grounding import grounding_loss, noun_slots, recorded_attention, shape_coverage
from ._world import SHAPES, SIZE, describe, random_objects, render, scene

CROP = 32
GROUNDING = 0.05
"""Default weight of the grounding loss beside the denoising loss (``_grounding``)."""


def _pixels(images: np.ndarray) -> torch.Tensor:
    """uint8 ``(n, h, w, 3)`` -> float ``(n, 3, h, w)`` in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1


def _share(text: str) -> float:
    """argparse type for a share of captions: a float in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan  # fails the range test below, so words get the same message as 1.5
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not a share: use a number from 0 to 1")
    return value


def _cosine(step: int, total: int, warmup: int, floor: float = 0.1) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def train_vae(steps: int, batch: int, rng: np.random.Generator) -> tuple[Any, float]:
    # diffusers' lazily imported model classes look untyped to mypy: models are Any here.
    vae: Any = _model.vae()
    optimizer = torch.optim.AdamW(vae.parameters(), lr=2e-3, weight_decay=0.0)
    bar = tqdm(range(steps), desc="vae", mininterval=5)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = 1e-3 * _cosine(step, steps, 100)
        # The VAE is convolutional: 32x32 crops teach it the same edges and colours at a quarter of the cost.
        corners = rng.integers(0, SIZE - CROP + 1, (batch, 2))
        x = _pixels(
            np.stack([render(random_objects(rng))[0][i : i + CROP, j : j + CROP] for i, j in corners])
        )
        posterior = vae.encode(x).latent_dist
        y = vae.decode(posterior.sample()).sample
        kl = posterior.kl().mean() / x[0].numel()
        loss = F.mse_loss(y, x) + 0.5 * F.l1_loss(y, x) + 1e-4 * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 10 == 0:
            psnr = 10 * math.log10(4 / F.mse_loss(y, x).item())
            bar.set_postfix(loss=f"{loss.item():.4f}", psnr=f"{psnr:.1f}")
    vae.eval().requires_grad_(False)
    return vae, psnr


@torch.no_grad()
def encode_scenes(vae: Any, count: int) -> tuple[torch.Tensor, list]:
    """Training scenes ``0..count-1``: latent means (unscaled) and objects."""
    latents, objects = [], []
    for start in tqdm(range(0, count, 256), desc="encode", mininterval=5):
        scenes = [scene(seed) for seed in range(start, min(count, start + 256))]
        objects += [s.objects for s in scenes]
        latents.append(vae.encode(_pixels(np.stack([s.image for s in scenes]))).latent_dist.mean)
    return torch.cat(latents), objects


def coverages(objects: list) -> torch.Tensor:
    """``shape_coverage`` of each scene's objects: ``(len(objects), len(SHAPES), 16, 16)`` float16 (41 MB for
    16,000 scenes)."""
    return torch.from_numpy(np.stack([shape_coverage(o) for o in objects])).half()


def update_ema(averages: list[Any], models: list[Any], step: int) -> None:
    """Move each average model's weights towards its model's, with a decay that warms up to 0.999."""
    decay = min(0.999, (1 + step) / (10 + step))
    with torch.no_grad():
        for average, model in zip(averages, models, strict=True):
            for p_avg, p in zip(average.parameters(), model.parameters(), strict=True):
                p_avg.lerp_(p, 1 - decay)


def drop_summaries(
    context: torch.Tensor, ids: torch.Tensor, eos_id: int, blank: torch.Tensor, dropped: torch.Tensor
) -> torch.Tensor:
    """``context`` with the states from each caption's first EOS on taken from ``blank`` where ``dropped``.

    ``context`` is ``(batch, tokens, dim)``, ``ids`` its token ids, ``blank`` the empty prompt's states
    ``(1, tokens, dim)`` and ``dropped`` a bool ``(batch,)``: which captions lose their summary.
    """
    eos = (ids == eos_id).int().argmax(dim=1)
    summary = dropped[:, None] & (torch.arange(ids.shape[1]) >= eos[:, None])
    return torch.where(summary[..., None], blank, context)


def _save(pipe: Any, folder: Path, info: dict) -> None:
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    pipe.save_pretrained(tmp, safe_serialization=True)
    for config in tmp.glob("*/config.json"):
        # ``_name_or_path`` is where a component was loaded from: a local path, not provenance
        fields = json.loads(config.read_text())
        if fields.pop("_name_or_path", None) is not None:
            config.write_text(json.dumps(fields, indent=2, sort_keys=True) + "\n")
    (tmp / "training.json").write_text(json.dumps(info, indent=2) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)


def install(out: Path, weights: Path | None) -> None:
    """Copy the last checkpoint to ``out/final`` and, when ``weights`` is given, into that package folder."""
    final = out / "final"
    shutil.rmtree(final, ignore_errors=True)
    shutil.copytree(out / "checkpoint", final)
    if weights is not None:
        shutil.rmtree(weights, ignore_errors=True)
        shutil.copytree(final, weights)


def add_run_arguments(
    parser: argparse.ArgumentParser, *, steps: int, lr: float, out: str, models: str
) -> None:
    """The arguments both toys' trainings take: seed, scenes, steps, batch, learning rate, ``--init`` (which
    starts ``models`` from a saved pipeline), checkpoints, threads and ``--install``."""
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scenes", type=int, default=16_000)
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=lr)
    parser.add_argument(
        "--init",
        type=Path,
        help=f"start {models} from this pipeline folder instead of from --seed",
    )
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path(out))
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (results depend on it)")
    parser.add_argument("--install", action="store_true", help="copy the final pipeline into the package")


def start_run(args: argparse.Namespace) -> tuple[np.random.Generator, float, dict[str, Any]]:
    """Threads and seeds set, the output folder made: the run's random generator, its start time, and
    what ``training.json`` starts with (the seed and every argument, and the ``training.json`` of the
    ``--init`` folder, so that a continued run keeps the provenance of the weights it started from)."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    info: dict[str, Any] = {"seed": args.seed, "args": {k: str(v) for k, v in vars(args).items()}}
    if args.init is not None and (args.init / "training.json").is_file():
        info["continued_from"] = json.loads((args.init / "training.json").read_text())
    return np.random.default_rng(args.seed), time.time(), info


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(
        parser, steps=11_000, lr=1e-3, out="artifacts/toy-run", models="the UNet and text encoder"
    )
    parser.add_argument("--vae-steps", type=int, default=1500)
    parser.add_argument("--vae-batch", type=int, default=32)
    parser.add_argument("--vae", type=Path, help="reuse the VAE of this pipeline folder (skips stage 1)")
    parser.add_argument(
        "--grounding",
        type=float,
        default=GROUNDING,
        help="weight of the grounding loss (0: none, the recipe of the weights before it)",
    )
    parser.add_argument(
        "--summary-dropout",
        type=_share,
        default=0.5,
        help="share of captions whose EOS and padding are blanked",
    )
    args = parser.parse_args(argv)
    rng, started, info = start_run(args)

    vae: Any
    if args.vae is not None:
        reused: Any = _model.load_pipeline(path=args.vae)
        vae = reused.vae.requires_grad_(False)
        vae.register_to_config(scaling_factor=1.0)
    else:
        vae, psnr = train_vae(args.vae_steps, args.vae_batch, rng)
        info["vae_psnr_db"] = round(psnr, 2)
    latents, objects = encode_scenes(vae, args.scenes)
    coverage = coverages(objects)
    scale = float(1 / latents.std())
    vae.register_to_config(scaling_factor=scale)
    latents = latents * scale
    info["vae_minutes"] = round((time.time() - started) / 60, 1)

    tok = _model.tokenizer()
    encoder: Any
    unet: Any
    if args.init is not None:
        start: Any = _model.load_pipeline(path=args.init)
        encoder, unet = start.text_encoder, start.unet
    else:
        encoder, unet = _model.text_encoder(len(tok)), _model.unet()
    encoder.train()
    unet.train()
    params = [*unet.parameters(), *encoder.parameters()]
    ema = [
        copy.deepcopy(encoder).eval().requires_grad_(False),
        copy.deepcopy(unet).eval().requires_grad_(False),
    ]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    noise_scheduler: Any = _model.training_scheduler()
    alphas = noise_scheduler.alphas_cumprod
    empty_ids = tok([""], padding="max_length", max_length=tok.model_max_length, return_tensors="pt")
    empty_ids = empty_ids.input_ids
    shape_ids = [tok.get_vocab()[f"{shape}</w>"] for shape in SHAPES]
    bar = tqdm(range(1, args.steps + 1), desc="unet", mininterval=5)
    # The grounding loss reads every cross-attention layer's probabilities (logged even at weight 0).
    with recorded_attention(unet) as attention:
        for step in bar:
            for group in optimizer.param_groups:
                group["lr"] = args.lr * _cosine(step - 1, args.steps, 200)
            index = torch.from_numpy(rng.integers(0, len(latents), args.batch))
            captions = [describe(objects[i], rng) if rng.random() >= 0.1 else "" for i in index.tolist()]
            ids = tok(captions, padding="max_length", max_length=tok.model_max_length, return_tensors="pt")
            x0 = latents[index]
            noise = torch.randn_like(x0)
            t = torch.randint(0, len(alphas), (args.batch,))
            a = alphas[t].view(-1, 1, 1, 1)
            xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
            context = encoder(ids.input_ids).last_hidden_state
            dropped = torch.from_numpy(rng.random(args.batch) < args.summary_dropout)
            blank = encoder(empty_ids).last_hidden_state
            context = drop_summaries(context, ids.input_ids, tok.eos_token_id, blank, dropped)
            denoising = F.mse_loss(unet(xt, t, encoder_hidden_states=context).sample, noise)
            slots = noun_slots(ids.input_ids, shape_ids)
            grounding = grounding_loss(attention, slots, coverage[index].float(), (x0.shape[2], x0.shape[3]))
            loss = denoising + args.grounding * grounding
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            update_ema(ema, [encoder, unet], step)
            if step % 10 == 0:
                bar.set_postfix(loss=f"{denoising.item():.4f}", grounding=f"{grounding.item():.3f}")
            if step % args.every == 0 or step == args.steps:
                info.update(steps=step, minutes=round((time.time() - started) / 60, 1), image_size=SIZE)
                pipe = _model.assemble(vae, ema[1], ema[0])
                _save(pipe, args.out / "checkpoint", info)
    install(args.out, _model.WEIGHTS if args.install else None)
    print(f"done: {args.steps} steps in {(time.time() - started) / 60:.1f} min -> {args.out / 'final'}")


if __name__ == "__main__":
    main()
