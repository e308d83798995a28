"""Decode speed of the wavefront coder against CompressAI's serial autoregressive decoder.

Both models have ``M = 192`` latent channels and decode a 512×512 image (a 32×32 latent):

- ``mbt2018``: ``compressai.zoo.mbt2018(quality=4)`` (N = M = 192), random weights,
  ``JointAutoregressiveHierarchicalPriors.decompress`` — one context step per position
  (1024 steps), plus its hyperprior and ``g_s``;
- vinfo's base codec with the ``paper`` preset (M = 192, no hyperprior), decoded in the
  ``serial`` order (same 1024 steps) and in the ``wavefront`` order (W + 3(H − 1) = 125 steps).

Weights are random (no downloads). To code realistic latents, both models get the same
treatment: the last analysis layer is scaled so that ``y`` has a standard deviation near 1,
and the entropy-parameters network predicts scales near that spread (bias of its last layer);
this gives about 2 bpp for both. All timed calls run interleaved, ``--repeats`` rounds in one
run (the machine may be shared: every call then sees the same load); rounds in which other
processes took more than 10 % of the CPUs (read from ``/proc/stat``) are left out, each time
is the best of the remaining rounds, and their per-round ratios are printed too. Printed: the
decode speed ratio, the latent-only ratio (``decompress`` minus the synthesis, for mbt2018
its ``g_s``) and the share of the synthesis ``g_b`` in vinfo's decode time.

The rate audit compares the entropy-coded payload with the model's estimate ``−Σ log2 p`` and
reports the fixed header separately — meaningful for trained models only (see
``bench_rate_audit.py``); a second audit draws the latent from the entropy model's own
distribution (what a trained model approaches), so payload − estimate is the coder's overhead.

Run: ``python benchmarks/bench_wavefront.py [--size 512] [--threads 2] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable
from typing import NamedTuple

import torch
from compressai.zoo import mbt2018
from torch.nn import functional as F

from vinfo.coding.bitstream import (
    HEADER_BYTES,
    compress,
    decode_latent,
    decompress,
    encode_latent,
    rate_audit,
)
from vinfo.coding.wavefront import serial_schedule, wavefront_schedule
from vinfo.models.base import BaseCodec
from vinfo.models.config import codec_preset
from vinfo.models.entropy import AutoregressiveEntropyModel, rate_bits

REPEATS = 5
QUIET = 0.1  # rounds in which other processes used more of the CPUs are left out
SPREAD = 15.0  # factor on the last analysis layer: std(y) ≈ 0.07 → ≈ 1
SCALE = 1.0  # bias of the predicted scales σ


def _cpu_jiffies() -> tuple[int, int, int] | None:
    """``(busy, total, ours)`` CPU jiffies since boot: all CPUs busy, all CPUs, this process
    (all its threads); ``None`` where ``/proc`` is missing (not Linux)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
        with open("/proc/self/stat") as own:
            ours = own.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields), int(ours[11]) + int(ours[12])  # utime + stime


class Rounds(NamedTuple):
    """Wall times in s per call name, one per round, and the CPU share other processes took
    in each round (NaN where unknown)."""

    times: dict[str, list[float]]
    foreign: list[float]


def interleaved(calls: dict[str, Callable[[], object]], repeats: int) -> Rounds:
    """Time each call once per round, ``repeats`` rounds, the calls interleaved in every round.

    On a shared machine the load changes over seconds; interleaving exposes every call to the
    same load, and the share of the CPUs other processes used during each round (from
    ``/proc/stat``) tells which rounds were disturbed.
    """
    times: dict[str, list[float]] = {name: [] for name in calls}
    foreign = []
    for _ in range(repeats):
        before = _cpu_jiffies()
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
        after = _cpu_jiffies()
        if before is None or after is None or after[1] == before[1]:
            foreign.append(math.nan)
        else:
            others = (after[0] - before[0]) - (after[2] - before[2])
            foreign.append(max(others, 0) / (after[1] - before[1]))
    return Rounds(times, foreign)


def fit_random_weights(analysis_last: torch.nn.Module, entropy_last: torch.nn.Module) -> None:
    """Give randomly initialised weights plausible latents and scales (see module docstring)."""
    with torch.no_grad():
        analysis_last.weight.mul_(SPREAD)
        analysis_last.bias.mul_(SPREAD)
        entropy_last.weight.mul_(0.1)
        half = entropy_last.bias.shape[0] // 2
        entropy_last.bias[:half] = SCALE  # (scales, means) order, as CompressAI's mbt2018


def smooth_image(size: int, seed: int = 0) -> torch.Tensor:
    """A smooth random RGB image ``(1, 3, size, size)`` in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, size // 16, size // 16, generator=generator)
    fine = torch.rand(1, 3, size, size, generator=generator) * 0.1
    image = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    return (image + fine).clamp(0, 1)


def matched_audit(size: int, M: int = 192, seed: int = 0) -> tuple[float, float]:
    """``(estimate bits, payload bits)`` for a latent drawn from the model's own distribution.

    The entropy model predicts fixed per-channel ``μ ~ U(−2, 2)`` and ``σ`` log-uniform in
    [0.11, 4]; ``ŷ = ⌊μ + σ·ε⌉`` then has exactly the model's likelihoods, as for a
    well-trained model, so the gap is the coder's own overhead.
    """
    generator = torch.Generator().manual_seed(seed)
    model = AutoregressiveEntropyModel(M).eval()
    log_sigma = torch.empty(M).uniform_(math.log(0.11), math.log(4.0), generator=generator)
    mu = torch.empty(M).uniform_(-2.0, 2.0, generator=generator)
    with torch.no_grad():
        last = model.entropy_parameters[-1]
        last.weight.zero_()
        last.bias[:M], last.bias[M:] = log_sigma.exp(), mu
        side = -(-size // 16)
        noise = torch.randn(1, M, side, side, generator=generator)
        y_hat = torch.round(mu[:, None, None] + log_sigma.exp()[:, None, None] * noise)
        estimate = float(rate_bits(model(y_hat).likelihoods)[0])
    return estimate, 8.0 * len(encode_latent(model, y_hat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="image side in pixels")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument(
        "--repeats", type=int, default=REPEATS, help="interleaved rounds of timed calls"
    )
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = smooth_image(args.size)
    h = w = -(-args.size // 16)

    reference = mbt2018(quality=4, pretrained=False).eval()
    fit_random_weights(reference.g_a[-1], reference.entropy_parameters[-1])
    with torch.no_grad():
        reference.update(force=True)
        encoded = reference.compress(x)
    reference_bpp = 8 * sum(len(s[0]) for s in encoded["strings"]) / args.size**2
    y_reference = torch.zeros(1, 192, h, w)

    codec = BaseCodec(codec_preset("paper"), "reconstruction").eval()
    fit_random_weights(codec.f_b.layers[-1], codec.entropy_model.entropy_parameters[-1])
    streams = {order: compress(codec, x, order) for order in ("serial", "wavefront")}
    payload = streams["wavefront"][HEADER_BYTES:]
    decoded = {order: decompress(codec, stream) for order, stream in streams.items()}
    y_hat = decoded["wavefront"].y_hat

    with torch.no_grad():
        rounds = interleaved(
            {
                "mbt2018": lambda: reference.decompress(encoded["strings"], encoded["shape"]),
                "wavefront": lambda: decompress(codec, streams["wavefront"]),
                "latent": lambda: decode_latent(
                    codec.entropy_model, payload, (h, w), order="wavefront"
                ),
                # as decompress runs it: channels-last input
                "synthesis": lambda: codec.g_b(y_hat.contiguous(memory_format=torch.channels_last)),
                "mbt2018 g_s": lambda: reference.g_s(y_reference),
                "serial": lambda: decompress(codec, streams["serial"]),
            },
            args.repeats,
        )
    # rounds in which other processes took under QUIET of the CPUs; all if none was quiet
    quiet = [i for i, share in enumerate(rounds.foreign) if not share >= QUIET]
    kept = quiet or list(range(args.repeats))
    best = {name: min(values[i] for i in kept) for name, values in rounds.times.items()}
    paired = [rounds.times["mbt2018"][i] / rounds.times["wavefront"][i] for i in kept]

    assert torch.equal(decoded["serial"].y_hat, y_hat)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # encoded with `threads`, decoded with one
    one_thread = decompress(codec, streams["wavefront"]).y_hat
    torch.set_num_threads(threads)
    same_with_one_thread = torch.equal(one_thread, y_hat)
    size_gap = len(streams["wavefront"]) / len(streams["serial"]) - 1
    audit = rate_audit(codec, x)

    print(f"image {args.size}x{args.size}, latent {h}x{w}, M = 192, threads = "
          f"{torch.get_num_threads()}, {args.repeats} interleaved rounds")
    loads = ", ".join(f"{100 * share:.0f} %" for share in rounds.foreign)
    print(f"CPU share taken by other processes per round: {loads}; times below: best of "
          + (f"the {len(quiet)} rounds under {100 * QUIET:.0f} %" if quiet else
             "all rounds (NONE was quiet: figures disturbed)"))
    print(f"context steps: serial {len(serial_schedule(h, w))}, "
          f"wavefront {len(wavefront_schedule(h, w))}")
    print(f"mbt2018.decompress (serial AR + hyperprior + g_s): {best['mbt2018']:8.3f} s"
          f"   ({reference_bpp:.3f} bpp)")
    print(f"vinfo decompress, serial order:                   {best['serial']:8.3f} s")
    print(f"vinfo decompress, wavefront order:                {best['wavefront']:8.3f} s"
          f"   ({8 * len(streams['wavefront']) / args.size**2:.3f} bpp)")
    print(f"  of which latent decoding {best['latent']:.3f} s, synthesis g_b "
          f"{best['synthesis']:.3f} s (synthesis share "
          f"{100 * best['synthesis'] / best['wavefront']:.0f} %)")
    print(f"speed ratio mbt2018 / vinfo wavefront:  {best['mbt2018'] / best['wavefront']:6.2f}x"
          f"   (per round: median {statistics.median(paired):.2f}x, "
          f"range {min(paired):.2f}-{max(paired):.2f}x)")
    print(f"speed ratio vinfo serial / wavefront:   {best['serial'] / best['wavefront']:6.2f}x")
    t_reference_latent = best["mbt2018"] - best["mbt2018 g_s"]
    print(
        f"latent decoding only (decompress - synthesis): mbt2018 {t_reference_latent:.3f} s, "
        f"vinfo wavefront {best['latent']:.3f} s, ratio {t_reference_latent / best['latent']:.1f}x"
    )
    print(f"decoded y_hat serial == wavefront: True; stream size gap {100 * size_gap:+.3f} %")
    print(f"decoded y_hat with 1 thread == with {threads}: {same_with_one_thread}")
    print(
        f"rate audit: estimate {audit.estimated_bits / audit.num_pixels:.4f} bpp, payload "
        f"{audit.payload_bits / audit.num_pixels:.4f} bpp ({100 * audit.payload_overhead:+.2f} %),"
        f" header {audit.header_bits} bits = {audit.header_bits / audit.num_pixels:.5f} bpp"
        " (random weights: not a fit; see bench_rate_audit.py)"
    )
    for size in (256, 512):
        estimate, payload_bits = matched_audit(size)
        print(
            f"rate audit, latent drawn from the model, {size}x{size}: estimate "
            f"{estimate / size**2:.4f} bpp, payload {payload_bits / size**2:.4f} bpp "
            f"({100 * (payload_bits / estimate - 1):+.3f} %), header {8 * HEADER_BYTES} bits "
            f"({100 * 8 * HEADER_BYTES / (payload_bits + 8 * HEADER_BYTES):.3f} % of the stream)"
        )


if __name__ == "__main__":
    main()
