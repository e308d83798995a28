import math
import struct
import time
import zlib

import pytest
import torch
from compressai.ans import BufferedRansEncoder

from vinfo.coding.bitstream import (
    HEADER_BYTES,
    MAX_PIXELS,
    StreamError,
    compress,
    compress_enhancement,
    decode_latent,
    decompress,
    decompress_enhancement,
    decompress_many,
    encode_latent,
    max_symbols,
    rate_audit,
)
from vinfo.coding.tables import default_tables
from vinfo.models.base import BaseCodec
from vinfo.models.config import codec_preset
from vinfo.models.enhancement import EnhancementCodec
from vinfo.models.entropy import AutoregressiveEntropyModel, ConditionalEntropyModel, rate_bits

TINY = codec_preset("tiny")


def trained_like_base(task="depth", beta=0.0, seed=0):
    """An untrained base codec whose latent is not all zeros."""
    torch.manual_seed(seed)
    codec = BaseCodec(TINY, task, beta).eval()
    with torch.no_grad():
        codec.f_b.layers[-1].weight.mul_(200)
    return codec


@pytest.mark.parametrize("size", [(64, 64), (40, 72), (17, 33)])
def test_base_round_trip_is_bit_exact(size):
    codec = trained_like_base()
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = codec(x)
    stream = compress(codec, x)
    decoded = decompress(codec, stream)
    assert bool(expected.y_hat.abs().sum() > 0)
    assert torch.equal(decoded.y_hat, expected.y_hat)
    assert decoded.x_tilde.shape == x.shape
    torch.testing.assert_close(decoded.x_tilde, expected.x_tilde)
    # §3.4: the training-time rate is the rate of the representation the decoder rebuilds
    with torch.no_grad():
        decoded_rate = rate_bits(codec.entropy_model(decoded.y_hat).likelihoods)
    assert torch.equal(decoded_rate, expected.rate_bits)


def test_paper_decode_is_bit_exact_and_within_1e_5_of_the_training_forward():
    # the decoder's synthesis (exp-based ELUs, channels-last) against g_b with autograd on
    torch.manual_seed(0)
    codec = BaseCodec(codec_preset("paper"), "reconstruction").eval()
    with torch.no_grad():
        codec.f_b.layers[-1].weight.mul_(15)
    x = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        y_hat = codec.encode_latent(x).y_hat
    decoded = decompress(codec, compress(codec, x))
    assert bool(y_hat.abs().sum() > 0)
    assert torch.equal(decoded.y_hat, y_hat)
    forward = codec.g_b(y_hat).detach()
    assert decoded.x_tilde.shape == forward.shape
    torch.testing.assert_close(decoded.x_tilde, forward, rtol=0, atol=1e-5)


def test_entropy_coding_wide_range_and_escape_symbols():
    torch.manual_seed(0)
    model = AutoregressiveEntropyModel(M=8).eval()
    y_hat = torch.round(torch.randn(1, 8, 3, 4) * 50)
    y_hat[0, 0, 0, 0] = 5000.0  # far outside every CDF table: bypass-coded
    payload = encode_latent(model, y_hat)
    assert torch.equal(decode_latent(model, payload, (3, 4)), y_hat)


def test_conditional_round_trip_needs_the_same_side_information():
    torch.manual_seed(0)
    model = ConditionalEntropyModel(M=4, base_channels=6, blocks=1).eval()
    y_hat = torch.round(torch.randn(1, 4, 3, 3) * 5)
    side = model.side_information(torch.round(torch.randn(1, 6, 3, 3) * 3), y_hat)
    payload = encode_latent(model, y_hat, side)
    assert torch.equal(decode_latent(model, payload, (3, 3), side), y_hat)


@pytest.mark.parametrize("strategy", ["scalable", "standalone"])
def test_enhancement_round_trip(strategy):
    base = trained_like_base()
    torch.manual_seed(1)
    codec = EnhancementCodec(base, strategy, "reconstruction", TINY).eval()
    with torch.no_grad():
        codec.f_e.layers[-1].weight.mul_(200)
    x = torch.rand(1, 3, 48, 32)
    with torch.no_grad():
        expected = codec(x)
    base_decoded = decompress(base, compress(base, x))
    decoded = decompress_enhancement(codec, compress_enhancement(codec, x), base_decoded.y_hat)
    assert torch.equal(decoded.y_hat, expected.y_hat)
    torch.testing.assert_close(decoded.x_tilde, expected.x_tilde)


def test_direct_strategy_has_no_stream():
    codec = EnhancementCodec(trained_like_base(), "direct", "reconstruction", TINY)
    with pytest.raises(ValueError, match="codes no enhancement latent"):
        compress_enhancement(codec, torch.rand(1, 3, 32, 32))


def test_corrupt_truncated_and_foreign_streams_are_refused():
    codec = trained_like_base()
    x = torch.rand(1, 3, 32, 32)
    stream = compress(codec, x)
    with pytest.raises(StreamError, match="shorter than the header"):
        decompress(codec, stream[:5])
    with pytest.raises(StreamError, match="corrupt or truncated"):
        decompress(codec, stream[:-1])
    flipped = bytearray(stream)
    flipped[-1] ^= 0x01
    with pytest.raises(StreamError, match="corrupt"):
        decompress(codec, bytes(flipped))
    with pytest.raises(StreamError, match="magic"):
        decompress(codec, b"PNG" + stream[3:])
    other = trained_like_base(beta=0.1)  # another spec
    with pytest.raises(StreamError, match="another config"):
        decompress(other, stream)
    assert isinstance(StreamError("x"), ValueError)
    with pytest.raises(ValueError, match="one image"):
        compress(codec, torch.rand(2, 3, 32, 32))


def test_rate_audit_separates_header_and_payload():
    codec = trained_like_base()
    audit = rate_audit(codec, torch.rand(1, 3, 64, 64))
    assert audit.header_bits == 8 * HEADER_BYTES
    assert audit.payload_bits > 0 and audit.estimated_bits > 0
    assert audit.num_pixels == 64 * 64
    # an untrained model is a poor fit; only check the coder is in the estimate's range
    assert -0.5 < audit.payload_overhead < 0.5


def forge(stream: bytes, version=None, height=None, width=None, payload=None) -> bytes:
    """``stream`` with header fields replaced and a CRC-32 recomputed as the format says: over
    the 13 header bytes before the CRC field, then the payload."""
    fields = list(struct.unpack(">3sBB4sHHI", stream[:HEADER_BYTES]))
    for index, value in ((1, version), (4, height), (5, width)):
        if value is not None:
            fields[index] = value
    payload = stream[HEADER_BYTES:] if payload is None else payload
    head = struct.pack(">3sBB4sHH", *fields[:6])
    return head + struct.pack(">I", zlib.crc32(head + payload)) + payload


def test_forge_reproduces_the_encoder_crc():
    codec = trained_like_base()
    stream = compress(codec, torch.rand(1, 3, 32, 32))
    assert forge(stream) == stream  # the CRC covers header and payload, as documented
    assert stream[3] == 3  # version


def test_every_single_bit_flip_of_the_header_is_refused():
    codec = trained_like_base()
    stream = compress(codec, torch.rand(1, 3, 32, 48))
    assert decompress(codec, stream).x_tilde.shape == (1, 3, 32, 48)
    for bit in range(8 * HEADER_BYTES):
        flipped = bytearray(stream)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(StreamError):
            decompress(codec, bytes(flipped))


def test_size_fields_are_covered_by_the_crc():
    codec = trained_like_base()
    stream = compress(codec, torch.rand(1, 3, 32, 32))
    tampered = bytearray(stream)
    tampered[9:13] = struct.pack(">HH", 64, 64)  # the size change of issue 16, CRC untouched
    with pytest.raises(StreamError, match="checksum mismatch"):
        decompress(codec, bytes(tampered))


@pytest.mark.parametrize("version", [1, 2])
def test_old_stream_versions_are_refused_naming_the_version(version):
    codec = trained_like_base()
    old = forge(compress(codec, torch.rand(1, 3, 32, 32)), version=version)
    with pytest.raises(StreamError, match=f"stream version {version} is no longer read"):
        decompress(codec, old)
    with pytest.raises(StreamError, match="unsupported stream version 9"):
        decompress(codec, forge(old, version=9))


def test_stream_of_another_model_is_refused_even_with_the_same_shapes():
    codec = trained_like_base()
    stream = compress(codec, torch.rand(1, 3, 32, 32))
    for other in (trained_like_base(task="reconstruction"), BaseCodec(TINY.replace(N=12), "depth")):
        with pytest.raises(StreamError, match="another config, task or strategy"):
            decompress(other.eval(), stream)
    same_spec = trained_like_base(seed=5)  # other weights, same spec: the hash is of the spec
    assert decompress(same_spec, stream).y_hat.shape == (1, TINY.M, 2, 2)


def test_oversized_images_are_refused_before_decoding():
    codec = trained_like_base()
    x = torch.rand(1, 3, 32, 48)
    stream = compress(codec, x)
    with pytest.raises(StreamError, match="exceeds the decoder's limit of 1000 pixels"):
        decompress(codec, stream, max_pixels=1000)
    assert decompress(codec, stream, max_pixels=32 * 48).x_tilde.shape == x.shape
    huge = forge(stream, height=65535, width=65535)  # valid CRC: a forger, not an accident
    start = time.perf_counter()
    with pytest.raises(StreamError, match=f"limit of {MAX_PIXELS} pixels"):
        decompress(codec, huge)
    # the payload bound: 16 × 4096² symbols do not fit a payload of some hundred bytes
    with pytest.raises(StreamError, match=f"cannot hold the {TINY.M * 4096**2} latent symbols"):
        decompress(codec, huge, max_pixels=2**32)
    with pytest.raises(StreamError, match="cannot hold"):
        decompress(codec, forge(stream, payload=b"\x00" * 4))  # shorter than the rANS flush
    assert time.perf_counter() - start < 0.5


def test_max_symbols_bounds_the_most_compressible_stream_the_coder_can_write():
    """Code the most probable symbol of the most peaked table many times with CompressAI's
    coder: the payload it writes must not be shorter than the bound admits."""
    tables = default_tables()
    best = (0, 0, 0)  # (frequency, row, symbol)
    for row, (cdf, length) in enumerate(zip(tables.cdf, tables.cdf_lengths, strict=True)):
        for symbol in range(length - 2):  # the last entry is the escape symbol
            best = max(best, (cdf[symbol + 1] - cdf[symbol], row, symbol))
    frequency, row, symbol = best
    assert 2**15 < frequency < 2**16
    count = 400_000
    encoder = BufferedRansEncoder()
    encoder.encode_with_indexes(
        [symbol + tables.offsets[row]] * count, [row] * count,
        tables.cdf, tables.cdf_lengths, tables.offsets,
    )
    payload = encoder.flush()
    ideal_bits = count * math.log2(2**16 / frequency)
    assert 8 * len(payload) >= ideal_bits  # rANS cannot beat the entropy of its own tables
    assert count <= max_symbols(len(payload))
    # the bound is no looser than a factor 2 over the ideal (+ the 64-bit flush)
    assert max_symbols(len(payload)) <= 2 * count * (8 * len(payload)) / (ideal_bits)


def test_batch_decode_in_workers_equals_decoding_each_stream():
    codec = trained_like_base("reconstruction", seed=3)
    torch.manual_seed(4)
    images = [torch.rand(1, 3, h, w) for h, w in ((32, 48), (48, 32), (16, 16), (40, 56), (32, 32))]
    streams = [compress(codec, x) for x in images]
    serial = [decompress(codec, data) for data in streams]
    for workers in (1, 2):
        batch = decompress_many(codec, streams, workers=workers)
        assert len(batch) == len(images)
        for one, many, x in zip(serial, batch, images, strict=True):  # in order, each right
            assert torch.equal(many.y_hat, one.y_hat)
            assert torch.equal(many.y_hat, codec.encode_latent(x).y_hat)
            assert many.x_tilde.shape == x.shape
            torch.testing.assert_close(many.x_tilde, one.x_tilde, rtol=0, atol=1e-5)
    assert decompress_many(codec, []) == []


def test_batch_decode_reports_the_bad_stream():
    codec = trained_like_base("reconstruction", seed=3)
    good = compress(codec, torch.rand(1, 3, 32, 32))
    bad = bytearray(good)
    bad[-1] ^= 1
    with pytest.raises(StreamError, match="checksum mismatch"):
        decompress_many(codec, [good, bytes(bad), good], workers=2)
    with pytest.raises(ValueError, match="workers must be >= 1"):
        decompress_many(codec, [good], workers=0)


def test_a_stream_depends_only_on_its_image():
    """Batch composition: a batch's latents equal those of each image alone, and a stream is
    the same whatever was coded or decoded before it."""
    codec = trained_like_base("reconstruction", seed=5)
    torch.manual_seed(6)
    x = torch.rand(4, 3, 48, 64)
    batch = codec.encode_latent(x).y_hat
    alone = torch.cat([codec.encode_latent(x[i : i + 1]).y_hat for i in range(4)])
    assert torch.equal(batch, alone)
    first = compress(codec, x[:1])
    decompress(codec, compress(codec, x[1:2]))
    assert compress(codec, x[:1]) == first
    assert torch.equal(decompress(codec, first).y_hat, alone[:1])
