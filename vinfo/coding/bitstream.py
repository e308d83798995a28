"""Compress and decompress codec latents into real bitstreams with CompressAI's rANS coder.

Stream layout (all integers big-endian), :data:`HEADER_BYTES` = 17 bytes of header, then the
rANS payload::

    magic b"VIF" (3) | version (1) | order (1) | model hash (4) | H (2) | W (2) | CRC-32 (4)

``model hash`` is the first 4 bytes of the SHA-256 of the model's JSON spec
(:func:`vinfo.models.checkpoint.model_spec`), so a stream from a model with another config,
task or β is refused; ``H × W`` is the original image size (the latent covers the image
padded to a multiple of 16, outputs are cropped back).

What the decoder checks, in this order, before it allocates anything (each failure is a
:class:`StreamError`):

1. the magic bytes and the version (streams of versions 1 and 2, whose CRC did not cover the
   header, are refused naming their version);
2. the CRC-32 of the *whole stream except the CRC field*: the 13 header bytes before it and the
   payload. CRC-32 detects every error burst of up to 32 bits, so any single-bit flip, in the
   header or the payload, and any truncation by fewer than 2³² bytes' worth of change is
   caught (a truncation changes the CRC with probability 1 − 2⁻³²). It is a checksum, not a
   MAC: it protects against accidents, not a forger, hence the bounds below;
3. the model hash against the decoding model;
4. the size: ``0 < H × W ≤ max_pixels`` (:data:`MAX_PIXELS` by default) and a latent of
   ``M × ⌈H/16⌉ × ⌈W/16⌉`` symbols no larger than the payload can hold
   (:func:`max_symbols`).

Version 3 changed only the CRC's coverage (version 2: scales take the nearest table level;
version 1: the next one up).

``order`` is the coding order (:data:`vinfo.coding.wavefront.CODING_ORDERS`, its index in
registration order): ``serial`` raster order, one spatial position (all channels) at a time as
CompressAI's ``mbt2018``, or ``wavefront``, all positions of an anti-diagonal at once (the
default; same ``ŷ``, far fewer steps). Encoder and decoder run the *same* loop
(:func:`vinfo.coding.wavefront.entropy_pass`), so the means and scales they compute are
bitwise identical. Symbols are ``s = ŷ − ⌊μ⌉`` (§3.4, see :mod:`vinfo.models.quantize`),
coded with the tables of :mod:`vinfo.coding.tables`, which account for the fractional part of
``μ`` so that the payload matches the model's estimated rate; values outside the tables use
the coder's escape (bypass) mode, so any integer latent round-trips exactly.

The model hash covers the spec, not the weights: two checkpoints of one config share it.
"""

from __future__ import annotations

import array
import functools
import hashlib
import json
import math
import multiprocessing
import os
import struct
import zlib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import NamedTuple

import numpy as np
import torch
from compressai.ans import BufferedRansEncoder, RansDecoder
from torch import Tensor, nn

from vinfo.coding.tables import PRECISION, default_tables
from vinfo.coding.wavefront import CODING_ORDERS, entropy_pass
from vinfo.models.base import BaseCodec
from vinfo.models.checkpoint import model_spec
from vinfo.models.enhancement import EnhancementCodec
from vinfo.models.entropy import AutoregressiveEntropyModel, rate_bits
from vinfo.models.quantize import latent_from_symbols, symbols_from_latent
from vinfo.models.transforms import STRIDE, pad_to_stride

MAGIC = b"VIF"
VERSION = 3  # 3: the CRC covers the header; 2: nearest scale level; 1: the next one up
DEFAULT_ORDER = "wavefront"
_HEADER = struct.Struct(">3sBB4sHHI")
HEADER_BYTES = _HEADER.size
"""Bytes of fixed header per stream (17)."""
_CRC_OFFSET = HEADER_BYTES - 4  # the CRC is the header's last field
MAX_PIXELS = 2**26
"""Default bound on ``H × W`` of a decoded image (8192 × 8192): a larger stream is refused
before anything is allocated. The header itself allows up to 65535 × 65535."""
_RANS_FLUSH_BYTES = 8  # Rans64EncFlush writes the 64-bit final state


class StreamError(ValueError):
    """A stream that is not a vinfo stream, comes from another model, or is corrupt."""


class DecodedLatent(NamedTuple):
    """A decoded stream.

    Attributes:
        y_hat: decoded latent ``(1, M, ⌈H/16⌉, ⌈W/16⌉)``, equal to the encoder's ``ŷ``.
        x_tilde: synthesis output, ``(1, 3, H, W)``.
    """

    y_hat: Tensor
    x_tilde: Tensor


class RateAudit(NamedTuple):
    """Estimated against actual rate of one image, all in bits.

    Attributes:
        estimated_bits: ``−Σ log2 p(ŷ)`` of the entropy model.
        payload_bits: bits of the rANS payload.
        header_bits: bits of the fixed header (``8 · HEADER_BYTES``).
        num_pixels: ``H × W`` of the original image, to turn bits into bpp.
    """

    estimated_bits: float
    payload_bits: int
    header_bits: int
    num_pixels: int

    @property
    def payload_overhead(self) -> float:
        """``payload / estimate − 1`` (0.01 = payload 1 % above the estimate)."""
        return self.payload_bits / self.estimated_bits - 1.0


def model_hash(model: nn.Module) -> bytes:
    """4-byte fingerprint of a model's spec (config, task, β, strategy)."""
    text = json.dumps(model_spec(model), sort_keys=True).encode()
    return hashlib.sha256(text).digest()[:4]


def _latent_size(height: int, width: int) -> tuple[int, int]:
    return -(-height // STRIDE), -(-width // STRIDE)


@functools.lru_cache(maxsize=1)
def _min_bits_per_symbol() -> float:
    """A lower bound on the payload bits a coded symbol costs (≈ 5.5e-5 with default tables).

    CompressAI's coder is rANS with a 64-bit state ``x ≥ 2³¹``, 16-bit frequencies and 32-bit
    renormalisation. Coding a symbol of frequency ``f`` maps ``x`` to
    ``⌊x / f⌋ · 2¹⁶ + x mod f + start ≥ x + (2¹⁶ − f) · ⌊x / f⌋``, and ``⌊x / f⌋ ≥
    (x / f)(1 − 2⁻¹⁵)``, so ``log2 x`` grows by at least ``(1 − 2⁻¹⁵) · log2(2¹⁶ / f)`` bits.
    A renormalisation (at most one per symbol) moves 32 bits of the state into the payload and
    leaves ``x ≥ 2¹⁵ f``, so it loses under ``log2(1 + 2⁻¹⁵ / f)`` bits, less than 1 % of the
    growth of the same symbol; the flush writes the final state (64 bits ≥ ``log2 x``). The
    payload therefore holds at least the total growth. Every table keeps frequency ≥ 1 for
    its escape symbol, so ``f ≤ f_max < 2¹⁶``; escaped values add 4-bit bypass symbols, which
    only add bits. Half of ``log2(2¹⁶ / f_max)`` is returned, a wide margin over the terms
    above.
    """
    tables = default_tables()
    f_max = max(
        max(b - a for a, b in zip(cdf[: length - 1], cdf[1:length], strict=True))
        for cdf, length in zip(tables.cdf, tables.cdf_lengths, strict=True)
    )
    return 0.5 * math.log2(2**PRECISION / f_max)


def max_symbols(payload_bytes: int) -> int:
    """The most latent symbols a payload of ``payload_bytes`` can code (a sound upper bound).

    Weak for long payloads (about 1.5 · 10⁵ symbols a byte), but it refuses a short payload
    whose header claims a huge image before any tensor is allocated.
    """
    return math.floor(8 * payload_bytes / _min_bits_per_symbol())


@torch.no_grad()
def encode_latent(
    model: AutoregressiveEntropyModel,
    y_hat: Tensor,
    side: Tensor | None = None,
    order: str = DEFAULT_ORDER,
) -> bytes:
    """rANS payload of an integer latent ``ŷ`` ``(1, M, h, w)`` in a coding order.

    Args:
        model: the entropy model of ``ŷ``.
        y_hat: integer-valued latent ``(1, M, h, w)``.
        side: side features ``(1, S, h, w)`` of a conditional model, else ``None``.
        order: a name in :data:`vinfo.coding.wavefront.CODING_ORDERS`.
    """
    tables = default_tables()
    symbols: list[int] = []
    indexes_all: list[int] = []

    def code(rows: Tensor, cols: Tensor, means: Tensor, scales: Tensor) -> Tensor:
        coded = symbols_from_latent(y_hat[0][:, rows, cols].T, means)  # (P, M) int32
        symbols.extend(coded.reshape(-1).tolist())
        indexes_all.extend(tables.indexes(means, scales).reshape(-1).tolist())
        return latent_from_symbols(coded, means)  # what the decoder will reconstruct

    entropy_pass(model, side, tuple(y_hat.shape[-2:]), order, code)
    encoder = BufferedRansEncoder()
    encoder.encode_with_indexes(
        symbols, indexes_all, tables.cdf, tables.cdf_lengths, tables.offsets
    )
    return encoder.flush()


@torch.no_grad()
def decode_latent(
    model: AutoregressiveEntropyModel,
    payload: bytes,
    size: tuple[int, int],
    side: Tensor | None = None,
    order: str = DEFAULT_ORDER,
) -> Tensor:
    """Inverse of :func:`encode_latent`: ``ŷ`` ``(1, M, h, w)`` for latent ``size = (h, w)``.

    The payload is trusted: pass only payloads whose integrity was checked (as
    :func:`decompress` does with the header's CRC), since the rANS decoder does not check it.
    """
    tables = default_tables()
    decoder = RansDecoder()
    decoder.set_stream(payload)

    def code(rows: Tensor, cols: Tensor, means: Tensor, scales: Tensor) -> Tensor:
        # hand the coder only the CDF rows this step uses: the binding converts every row
        # it is given on each call
        used, local = torch.unique(tables.indexes(means, scales), return_inverse=True)
        used = used.tolist()
        decoded = decoder.decode_stream(
            local.reshape(-1).tolist(),
            [tables.cdf[i] for i in used],
            [tables.cdf_lengths[i] for i in used],
            [tables.offsets[i] for i in used],
        )
        # via a C int array: a third of the time of torch.tensor on the list
        symbols = torch.frombuffer(array.array("i", decoded), dtype=torch.int32)
        return latent_from_symbols(symbols.reshape(means.shape), means)  # (P, M)

    return entropy_pass(model, side, size, order, code)


class _Header(NamedTuple):
    height: int
    width: int
    order: str
    payload: bytes


def _crc(data: bytes) -> int:
    """CRC-32 of a stream's header (without its CRC field) and payload."""
    return zlib.crc32(data[HEADER_BYTES:], zlib.crc32(data[:_CRC_OFFSET]))


def _pack(model: nn.Module, height: int, width: int, order: str, payload: bytes) -> bytes:
    if not (0 < height < 2**16 and 0 < width < 2**16):
        raise ValueError(f"image size {height}×{width} does not fit the header (< 65536)")
    CODING_ORDERS.get(order)  # unknown names raise, listing the valid ones
    order_id = CODING_ORDERS.names().index(order)
    fingerprint = model_hash(model)
    stream = _HEADER.pack(MAGIC, VERSION, order_id, fingerprint, height, width, 0) + payload
    return stream[:_CRC_OFFSET] + struct.pack(">I", _crc(stream)) + stream[HEADER_BYTES:]


def _unpack(model: nn.Module, data: bytes, channels: int, max_pixels: int) -> _Header:
    """The checked header of ``data``; see the module docstring for the order of the checks."""
    data = bytes(data)
    if len(data) < HEADER_BYTES:
        raise StreamError(f"stream of {len(data)} bytes is shorter than the header")
    magic, version, order_id, fingerprint, height, width, crc = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise StreamError("not a vinfo stream (bad magic bytes)")
    if version in (1, 2):
        raise StreamError(
            f"stream version {version} is no longer read (this decoder reads version {VERSION},"
            " whose checksum covers the header); encode the image again"
        )
    if version != VERSION:
        raise StreamError(f"unsupported stream version {version} (this decoder: {VERSION})")
    if _crc(data) != crc:
        raise StreamError("corrupt or truncated stream (checksum mismatch)")
    if fingerprint != model_hash(model):
        raise StreamError("stream was encoded by a model with another config, task or strategy")
    if order_id >= len(CODING_ORDERS):
        raise StreamError(f"unknown coding order id {order_id}")
    if height == 0 or width == 0:
        raise StreamError(f"corrupt stream: image size {height}×{width}")
    if height * width > max_pixels:
        raise StreamError(
            f"image of {height}×{width} pixels exceeds the decoder's limit of {max_pixels} "
            "pixels (max_pixels)"
        )
    payload = data[HEADER_BYTES:]
    symbols = channels * math.prod(_latent_size(height, width))
    if len(payload) < _RANS_FLUSH_BYTES or symbols > max_symbols(len(payload)):
        raise StreamError(
            f"corrupt stream: a payload of {len(payload)} bytes cannot hold the "
            f"{symbols} latent symbols of a {height}×{width} image"
        )
    return _Header(height, width, CODING_ORDERS.names()[order_id], payload)


def _single_image(x: Tensor) -> tuple[int, int]:
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"compress takes one image of shape (1, C, H, W), got {tuple(x.shape)}")
    return x.shape[-2], x.shape[-1]


@torch.no_grad()
def compress(codec: BaseCodec, x: Tensor, order: str = DEFAULT_ORDER) -> bytes:
    """Encode one image ``(1, 3, H, W)`` with a base codec into header + rANS payload."""
    height, width = _single_image(x)
    y_hat = codec.encode_latent(x).y_hat
    payload = encode_latent(codec.entropy_model, y_hat, None, order)
    return _pack(codec, height, width, order, payload)


@torch.no_grad()
def decompress(codec: BaseCodec, data: bytes, max_pixels: int = MAX_PIXELS) -> DecodedLatent:
    """Decode a :func:`compress` stream: ``ŷ_b`` and ``x̃ = g_b(ŷ_b)`` cropped to ``H × W``.

    Args:
        codec: the base codec that wrote the stream.
        data: header + payload.
        max_pixels: refuse streams of images with more than this many pixels ``H × W``.

    Raises:
        StreamError: foreign, corrupt, truncated or oversized stream, or one of an old version.
    """
    header = _unpack(codec, data, codec.entropy_model.M, max_pixels)
    size = _latent_size(header.height, header.width)
    y_hat = decode_latent(codec.entropy_model, header.payload, size, None, header.order)
    return DecodedLatent(y_hat, _synthesis(codec.g_b, y_hat, header.height, header.width))


def decompress_many(
    codec: BaseCodec,
    streams: Sequence[bytes],
    workers: int | None = None,
    max_pixels: int = MAX_PIXELS,
) -> list[DecodedLatent]:
    """:func:`decompress` of each stream, in worker processes of one torch thread each.

    An image's decode is a chain of small dependent steps (one per anti-diagonal of the latent)
    that one core runs best, so a batch of streams is spread over processes, each decoding its
    share serially, rather than over threads of one decode. The workers are forked (on
    platforms without ``fork``, spawned with a pickled copy of ``codec``) and see ``codec`` as
    it is at the call. The results equal :func:`decompress` of each stream bit for bit
    (latents) and within float rounding (images), in the order of ``streams``.

    Args:
        codec: the base codec that wrote the streams.
        streams: header + payload of each image.
        workers: processes to use (default: one per CPU core, at most one per stream); ``1``
            decodes in this process, with its thread settings.
        max_pixels: as for :func:`decompress`.

    Raises:
        StreamError: the first stream (in order) that is foreign, corrupt, truncated, oversized
            or of an old version; nothing is returned then.
    """
    streams = list(streams)
    if workers is None:
        workers = max(1, min(len(streams), os.cpu_count() or 1))
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if workers == 1 or len(streams) <= 1:
        return [decompress(codec, data, max_pixels) for data in streams]
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(
        workers, multiprocessing.get_context(method), _decode_worker_init, (codec, max_pixels)
    ) as pool:
        decoded = pool.map(_decode_in_worker, streams, chunksize=math.ceil(len(streams) / workers))
        return [DecodedLatent(torch.from_numpy(y), torch.from_numpy(x)) for y, x in decoded]


_worker_codec: tuple[BaseCodec, int] | None = None  # (codec, max_pixels) of a decode worker


def _decode_worker_init(codec: BaseCodec, max_pixels: int) -> None:
    global _worker_codec
    torch.set_num_threads(1)
    _worker_codec = (codec, max_pixels)


def _decode_in_worker(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """One stream's ``(ŷ, x̃)`` as NumPy arrays: pickled through the pipe, with none of the
    shared-memory file handles that returning tensors would hold open per result."""
    assert _worker_codec is not None, "not in a decode worker"
    codec, max_pixels = _worker_codec
    decoded = decompress(codec, data, max_pixels)
    return decoded.y_hat.numpy(), decoded.x_tilde.numpy()


def _synthesis(transform: nn.Module, y_hat: Tensor, height: int, width: int) -> Tensor:
    """``transform(ŷ)`` cropped to ``height × width``, contiguous.

    Without autograd a :class:`~vinfo.models.transforms.SynthesisTransform` runs its inference
    path (channels-last on the CPU, ELUs from a vectorised ``exp``): within float rounding of
    the training-path forward pass (≈1e-6, tested within 1e-5); ``ŷ`` is untouched by it.
    Measured alternatives that did not help on CPU (one thread, CPU time, interleaved rounds,
    issue 17): ``torch.jit.freeze`` and ``torch.jit.optimize_for_inference`` of the traced
    synthesis (within 3 % either way, with the ELU of PyTorch), ``torch.inference_mode`` in
    place of ``no_grad`` (1.06×, range 0.87–1.20×), and 1×1 convolutions as one matrix
    product (within 2 %).
    """
    return transform(y_hat)[..., :height, :width].contiguous()


def _enhancement_side(codec: EnhancementCodec, y_hat_b: Tensor) -> Tensor:
    if not codec.strategy.codes_latent:
        raise ValueError(f"strategy {codec.strategy.name!r} codes no enhancement latent")
    condition = codec.strategy.condition(y_hat_b)
    like = torch.empty(1, codec.config.M, *y_hat_b.shape[-2:])
    return codec.entropy_model.side_information(condition, like)


@torch.no_grad()
def compress_enhancement(
    codec: EnhancementCodec, x: Tensor, order: str = DEFAULT_ORDER
) -> bytes:
    """Encode the enhancement latent ``ŷ_e`` of one image, conditioned on its base ``ŷ_b``."""
    height, width = _single_image(x)
    y_hat_b = codec.base.encode_latent(x).y_hat
    side = _enhancement_side(codec, y_hat_b)
    y_hat = torch.round(codec.f_e(pad_to_stride(x)))  # ŷ_e = ⌊y_e⌉ (§3.4), as in forward
    payload = encode_latent(codec.entropy_model, y_hat, side, order)
    return _pack(codec, height, width, order, payload)


@torch.no_grad()
def decompress_enhancement(
    codec: EnhancementCodec, data: bytes, y_hat_b: Tensor, max_pixels: int = MAX_PIXELS
) -> DecodedLatent:
    """Decode ``ŷ_e`` given the decoded base latent ``ŷ_b`` (from :func:`decompress`).

    Raises:
        StreamError: as :func:`decompress`.
    """
    header = _unpack(codec, data, codec.entropy_model.M, max_pixels)
    size = _latent_size(header.height, header.width)
    if tuple(y_hat_b.shape[-2:]) != size:
        raise ValueError(
            f"base latent {tuple(y_hat_b.shape)} does not fit a "
            f"{header.height}×{header.width} image"
        )
    side = _enhancement_side(codec, y_hat_b)
    y_hat = decode_latent(codec.entropy_model, header.payload, size, side, header.order)
    return DecodedLatent(y_hat, _synthesis(codec.g_e, y_hat, header.height, header.width))


@torch.no_grad()
def rate_audit(codec: BaseCodec, x: Tensor, order: str = DEFAULT_ORDER) -> RateAudit:
    """Estimated ``−Σ log2 p`` vs. actual payload and header bits for one image."""
    height, width = _single_image(x)
    estimated = float(rate_bits(codec.encode_latent(x).likelihoods)[0])
    stream = compress(codec, x, order)
    return RateAudit(
        estimated, 8 * (len(stream) - HEADER_BYTES), 8 * HEADER_BYTES, height * width
    )


__all__ = [
    "DEFAULT_ORDER",
    "HEADER_BYTES",
    "MAX_PIXELS",
    "VERSION",
    "DecodedLatent",
    "RateAudit",
    "StreamError",
    "compress",
    "compress_enhancement",
    "decode_latent",
    "decompress",
    "decompress_enhancement",
    "decompress_many",
    "encode_latent",
    "max_symbols",
    "model_hash",
    "rate_audit",
]
