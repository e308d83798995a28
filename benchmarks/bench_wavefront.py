"""Decode speed of vinfo's wavefront coder against CompressAI's serial autoregressive decoder.

The anchor has vinfo's size: CompressAI's Minnen et al. (2018) joint autoregressive +
hierarchical prior model (:class:`compressai.models.JointAutoregressiveHierarchicalPriors`, the
architecture of ``mbt2018``) built with ``N = 96, M = 192`` (vinfo's codec of the ``linear``
layout at that size; ``--layout authors``: the ``paper`` preset, see ``anchors.py``), random
weights (``pretrained=False``: nothing is downloaded), after ``update()``. Its ``decompress``
decodes the hyperprior ``ẑ`` and runs ``h_s``, then one context step per latent position
(``h · w`` steps), then ``g_s``; the hyperprior's part and ``g_s`` are also timed apart, so the
autoregressive latent decoding is compared alone as well (vinfo's codec has no hyperprior).
vinfo's base codec decodes in the ``wavefront`` order (``w + 3(h − 1)`` steps).

Weights are random. To code realistic latents, both models get the same treatment: the last
analysis layer is scaled so that ``y`` has a standard deviation near 1, and the
entropy-parameters network predicts scales near that spread (bias of its last layer); this gives
about 2 bpp for both.

Timing: :mod:`timing` (this folder): interleaved rounds of every call, CPU time of the process
with wall time beside it, the warm-up round dropped, median and range, the load average at the
start and end. Default one torch thread (the CPU time is then also the latency). Checked and
printed: vinfo's decoded ``ŷ`` equals the encoder's ``ŷ`` bit for bit (and with 1 and 2
threads), and the decoded image is within 1e-5 of the training-path forward ``g_b(ŷ)``.

The rate audit compares the entropy-coded payload with the model's estimate ``−Σ log2 p`` and
reports the fixed header separately — meaningful for trained models only (see
``bench_rate_audit.py``); a second audit draws the latent from the entropy model's own
distribution (what a trained model approaches), so payload − estimate is the coder's overhead.

Batch decode: ``--batch`` streams at the first size decoded one after another in this process
against :func:`vinfo.coding.bitstream.decompress_many` on every core, on wall time (checked bit
for bit against the one-by-one decode).

Cross-device decoding (encode on the CPU, decode on CUDA and back) needs a CUDA device; this
benchmark has none to use on a CPU-only machine and says so.

Run: ``python benchmarks/bench_wavefront.py [--sizes 256 512] [--threads 1] [--rounds 5]
[--serial] [--batch 16] [--layout linear|authors]``.
"""

from __future__ import annotations

import argparse
import math
import os

import torch
from anchors import (
    ANCHOR_M,
    ANCHOR_N,
    LAYOUT_CONFIGS,
    add_layout_argument,
    anchor_size,
)
from compressai.models import JointAutoregressiveHierarchicalPriors
from timing import flops, goal_line, interleaved, paired_ratios, session
from torch.nn import functional as F

from vinfo.coding.bitstream import (
    HEADER_BYTES,
    compress,
    decode_latent,
    decompress,
    decompress_many,
    encode_latent,
    rate_audit,
)
from vinfo.coding.wavefront import serial_schedule, wavefront_schedule
from vinfo.models.base import BaseCodec
from vinfo.models.entropy import AutoregressiveEntropyModel, rate_bits

ROUNDS = 5
SPREAD = 15.0  # factor on the last analysis layer: std(y) ≈ 0.07 → ≈ 1
SCALE = 1.0  # bias of the predicted scales σ
DECODE_GOAL = 10.0  # issue 17: decode ≥ 10× the anchor at identical N, M
BATCH_GOAL = 1.5  # issue 17: a batch of streams decodes ≥ 1.5× faster on 2 cores than on one
IMAGE_TOLERANCE = 1e-5  # decoded image against the training-path forward pass


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


def mbt2018_anchor(N: int, M: int) -> JointAutoregressiveHierarchicalPriors:
    """CompressAI's joint autoregressive + hyperprior model of size ``N, M``, random weights
    given plausible latents (:func:`fit_random_weights`), entropy tables built."""
    torch.manual_seed(0)
    model = JointAutoregressiveHierarchicalPriors(N=N, M=M).eval()
    fit_random_weights(model.g_a[-1], model.entropy_parameters[-1])
    model.update(force=True)
    return model


def synthesis_input(model: JointAutoregressiveHierarchicalPriors, strings, shape) -> torch.Tensor:
    """The ``ŷ`` that ``model.decompress`` hands to ``g_s`` (caught with a forward hook)."""
    caught = []
    hook = model.g_s.register_forward_pre_hook(lambda _, inputs: caught.append(inputs[0]))
    try:
        model.decompress(strings, shape)
    finally:
        hook.remove()
    return caught[0]


def bench_size(size: int, args: argparse.Namespace, codec: BaseCodec,
               reference: JointAutoregressiveHierarchicalPriors) -> None:
    """Time and check the decoders at one image size; prints its lines."""
    x = smooth_image(size)
    h = w = -(-size // 16)
    with torch.no_grad():
        encoded = reference.compress(x)
    strings, shape = encoded["strings"], encoded["shape"]
    reference_bpp = 8 * sum(len(s[0]) for s in strings) / size**2
    y_reference = synthesis_input(reference, strings, shape)

    orders = ("wavefront", "serial") if args.serial else ("wavefront",)
    streams = {order: compress(codec, x, order) for order in orders}
    payload = streams["wavefront"][HEADER_BYTES:]
    decoded = decompress(codec, streams["wavefront"])
    y_hat = decoded.y_hat
    with torch.no_grad():
        y_encoder = codec.encode_latent(x).y_hat
    y_hat_last = y_hat.contiguous(memory_format=torch.channels_last)  # as decompress runs g_b

    def hyperprior() -> torch.Tensor:
        return reference.h_s(reference.entropy_bottleneck.decompress(strings[1], shape))

    calls = {
        "mbt2018 decompress": lambda: reference.decompress(strings, shape),
        "mbt2018 hyperprior (z + h_s)": hyperprior,
        "mbt2018 g_s": lambda: reference.g_s(y_reference),
        "vinfo decompress": lambda: decompress(codec, streams["wavefront"]),
        "vinfo latent": lambda: decode_latent(codec.entropy_model, payload, (h, w)),
        "vinfo synthesis g_b": lambda: codec.g_b(y_hat_last),
    }
    if args.serial:
        calls["vinfo decompress, serial order"] = lambda: decompress(codec, streams["serial"])
    with torch.no_grad():
        rounds = interleaved(calls, args.rounds)

    # checks: bit-exact latents (encoder, serial order, thread counts), image against forward
    exact = torch.equal(y_hat, y_encoder)
    serial_exact = (torch.equal(decompress(codec, streams["serial"]).y_hat, y_hat)
                    if args.serial else None)
    threads = torch.get_num_threads()
    other = 2 if threads == 1 else 1
    torch.set_num_threads(other)
    threads_exact = torch.equal(decompress(codec, streams["wavefront"]).y_hat, y_hat)
    torch.set_num_threads(threads)
    forward = codec.g_b(y_hat)[..., :size, :size].detach()  # autograd on: nn.ELU, NCHW
    image_gap = float((decoded.x_tilde - forward).abs().max())

    cpu = rounds.cpu
    print(f"\n== {size}x{size} image, latent {h}x{w}, vinfo {codec.config.describe_transforms()}, "
          f"M = {codec.config.M}; context steps: mbt2018 {len(serial_schedule(h, w))}, "
          f"vinfo wavefront {len(wavefront_schedule(h, w))}; mbt2018 {reference_bpp:.3f} bpp, "
          f"vinfo {8 * len(streams['wavefront']) / size**2:.3f} bpp")
    print(rounds.table())
    mbt_latent = [t - g for t, g in zip(cpu["mbt2018 decompress"], cpu["mbt2018 g_s"],
                                        strict=True)]
    mbt_ar = [t - z for t, z in zip(mbt_latent, cpu["mbt2018 hyperprior (z + h_s)"],
                                    strict=True)]
    share = [100 * s / d for s, d in zip(cpu["vinfo synthesis g_b"], cpu["vinfo decompress"],
                                         strict=True)]
    print(f"vinfo decoded y_hat == encoder's y_hat, bit for bit: {exact}; with {other} "
          f"thread(s) == with {threads}: {threads_exact}"
          + (f"; serial order == wavefront: {serial_exact}" if args.serial else ""))
    print(goal_line(f"decoded image vs training-path forward g_b(y_hat), max |diff|, {size}x{size}",
                    [image_gap], IMAGE_TOLERANCE, higher_is_better=False, spec=".1e", unit=""))
    print(goal_line(f"decode speed-up vs mbt2018 ({anchor_size(codec.config)}), CPU time, "
                    f"{size}x{size}",
                    rounds.ratios("mbt2018 decompress", "vinfo decompress"), DECODE_GOAL))
    print(goal_line(f"decode speed-up vs mbt2018, wall clock, {size}x{size}",
                    rounds.ratios("mbt2018 decompress", "vinfo decompress", "wall"), None))
    print(goal_line(f"latent decoding speed-up (decompress - synthesis), {size}x{size}",
                    paired_ratios(mbt_latent, cpu["vinfo latent"]), None))
    print(goal_line(f"latent decoding speed-up without mbt2018's hyperprior, {size}x{size}",
                    paired_ratios(mbt_ar, cpu["vinfo latent"]), None))
    print(goal_line(f"synthesis time vinfo g_b / mbt2018 g_s, {size}x{size}",
                    rounds.ratios("vinfo synthesis g_b", "mbt2018 g_s"), None))
    print(goal_line(f"synthesis share of vinfo's decode time, {size}x{size}", share, None,
                    spec=".0f", unit=" %"))
    synthesis_flops(size, rounds, codec, reference, y_hat, y_reference)
    if args.serial:
        print(goal_line(f"vinfo serial / wavefront order, {size}x{size}",
                        rounds.ratios("vinfo decompress, serial order", "vinfo decompress"),
                        None))
    audit = rate_audit(codec, x)
    print(
        f"rate audit: estimate {audit.estimated_bits / audit.num_pixels:.4f} bpp, payload "
        f"{audit.payload_bits / audit.num_pixels:.4f} bpp ({100 * audit.payload_overhead:+.2f} %),"
        f" header {audit.header_bits} bits = {audit.header_bits / audit.num_pixels:.5f} bpp"
        " (random weights: not a fit; see bench_rate_audit.py)"
    )
    estimate, payload_bits = matched_audit(size)
    print(
        f"rate audit, latent drawn from the model, {size}x{size}: estimate "
        f"{estimate / size**2:.4f} bpp, payload {payload_bits / size**2:.4f} bpp "
        f"({100 * (payload_bits / estimate - 1):+.3f} %), header {8 * HEADER_BYTES} bits "
        f"({100 * 8 * HEADER_BYTES / (payload_bits + 8 * HEADER_BYTES):.3f} % of the stream)"
    )


def synthesis_flops(size: int, rounds, codec: BaseCodec,
                    reference: JointAutoregressiveHierarchicalPriors, y_hat: torch.Tensor,
                    y_reference: torch.Tensor) -> None:
    """Where the decode goal is lost: the FLOPs of each synthesis, the FLOP rate each reaches,
    and the decode speed-up vinfo would have with a synthesis of ``mbt2018``'s FLOPs run at
    vinfo's own FLOP rate (derived from the measured rounds; no goal)."""
    with torch.enable_grad():  # the architectures' FLOPs, not an inference path's
        ours = flops(lambda: codec.g_b(y_hat))
        theirs = flops(lambda: reference.g_s(y_reference))
    cpu = rounds.cpu
    print(f"synthesis FLOPs per image (forward, FlopCounterMode), {size}x{size}: vinfo g_b "
          f"{ours / 1e9:.2f} GFLOP, mbt2018 g_s {theirs / 1e9:.2f} GFLOP ({ours / theirs:.2f}x)")
    for name, count in (("vinfo synthesis g_b", ours), ("mbt2018 g_s", theirs)):
        print(goal_line(f"{name} FLOP rate, {size}x{size}",
                        [count / 1e9 / t for t in cpu[name]], None, spec=".1f",
                        unit=" GFLOP/s"))
    print(goal_line(f"synthesis FLOP rate vinfo / mbt2018, {size}x{size}",
                    [ours / theirs / r for r in rounds.ratios("vinfo synthesis g_b",
                                                              "mbt2018 g_s")], None))
    equal_flops = [anchor / (decode - synthesis * (1 - theirs / ours))
                   for anchor, decode, synthesis in zip(
                       cpu["mbt2018 decompress"], cpu["vinfo decompress"],
                       cpu["vinfo synthesis g_b"], strict=True)]
    print(goal_line(f"decode speed-up with a synthesis of mbt2018's FLOPs at vinfo's FLOP rate "
                    f"(derived), {size}x{size}", equal_flops, None))


def bench_batch(size: int, images: int, rounds: int, codec: BaseCodec) -> None:
    """Wall time of a batch of streams: one after another in this process against
    :func:`decompress_many` on every core (one torch thread per worker, forked per call, so the
    workers' start is included). CPU time is not comparable here: the workers' is not this
    process's."""
    workers = os.cpu_count() or 1
    streams = [compress(codec, smooth_image(size, seed)) for seed in range(images)]
    calls = {
        "one after another": lambda: [decompress(codec, data) for data in streams],
        f"decompress_many, {workers} workers": lambda: decompress_many(codec, streams),
    }
    with torch.no_grad():
        rounds_ = interleaved(calls, rounds)
    exact = all(torch.equal(many.y_hat, decompress(codec, data).y_hat)
                for many, data in zip(decompress_many(codec, streams), streams, strict=True))
    print(f"\n== batch of {images} streams of {size}x{size}, {workers} cores")
    print(rounds_.table())
    print(f"batch decode == one-by-one decode, bit for bit: {exact}")
    goal = BATCH_GOAL if workers >= 2 else None  # one core: nothing to gain, no goal
    print(goal_line(f"batch decode speed-up, wall clock, {images} x {size}x{size}",
                    rounds_.ratios("one after another", f"decompress_many, {workers} workers",
                                   "wall"), goal))


def cross_device(size: int, codec: BaseCodec) -> None:
    """Encode on the CPU, decode on CUDA, and the reverse; print whether ``ŷ`` matches bit for
    bit (CompressAI issues #279 and #309). Needs a CUDA device."""
    if not torch.cuda.is_available():
        print("\ncross-device decode (CPU <-> CUDA): skipped, no CUDA device on this machine")
        return
    x = smooth_image(size, seed=1)
    for encoder, decoder in (("cpu", "cuda"), ("cuda", "cpu")):
        try:
            stream = compress(codec.to(encoder), x.to(encoder))
            expected = decompress(codec, stream).y_hat.cpu()
            decoded = decompress(codec.to(decoder), stream).y_hat.cpu()
            verdict = f"bit for bit: {torch.equal(decoded, expected)}"
        except Exception as error:  # a report, not a crash: say what failed
            verdict = f"failed: {type(error).__name__}: {str(error).splitlines()[0]}"
        print(f"cross-device decode, encoded on {encoder}, decoded on {decoder}, "
              f"{size}x{size}: {verdict}")
    codec.cpu()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512],
                        help="image sides in pixels")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--rounds", type=int, default=ROUNDS,
                        help="interleaved rounds kept (after one warm-up round)")
    parser.add_argument("--serial", action="store_true",
                        help="also time vinfo's serial coding order")
    parser.add_argument("--batch", type=int, default=16,
                        help="streams in the batch-decode timing, at the first size (0: skip)")
    add_layout_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = LAYOUT_CONFIGS[args.layout]
    torch.manual_seed(0)
    codec = BaseCodec(config, "reconstruction").eval()
    fit_random_weights(codec.f_b.layers[-1], codec.entropy_model.entropy_parameters[-1])
    reference = mbt2018_anchor(ANCHOR_N, ANCHOR_M)
    with session(f"decode: vinfo wavefront ({config.describe_transforms()}) vs CompressAI mbt2018 "
                 f"(N = {ANCHOR_N}, M = {ANCHOR_M}), {args.rounds} interleaved rounds after "
                 "1 warm-up"):
        for size in args.sizes:
            bench_size(size, args, codec, reference)
        if args.batch:
            bench_batch(args.sizes[0], args.batch, args.rounds, codec)
        cross_device(args.sizes[0], codec)


if __name__ == "__main__":
    main()
