import pytest
import torch

from vinfo.coding.bitstream import (
    compress,
    decode_latent,
    decompress,
    encode_latent,
)
from vinfo.coding.wavefront import (
    CODING_ORDERS,
    entropy_pass,
    serial_schedule,
    wavefront_schedule,
)
from vinfo.models.base import BaseCodec
from vinfo.models.config import codec_preset
from vinfo.models.entropy import AutoregressiveEntropyModel, ConditionalEntropyModel


def step_of(schedule):
    steps = {}
    for step, (rows, cols) in enumerate(schedule):
        for row, col in zip(rows.tolist(), cols.tolist(), strict=True):
            assert (row, col) not in steps
            steps[row, col] = step
    return steps


@pytest.mark.parametrize("kernel_size", [3, 5, 7])
@pytest.mark.parametrize(("height", "width"), [(1, 1), (4, 2), (5, 7), (6, 11)])
@pytest.mark.parametrize("order", CODING_ORDERS.names())
def test_every_context_position_is_coded_in_an_earlier_step(order, height, width, kernel_size):
    schedule = CODING_ORDERS.get(order)(height, width, kernel_size)
    steps = step_of(schedule)
    assert len(steps) == height * width
    # the causal neighbourhood of compressai's MaskedConv2d, type A
    mask = AutoregressiveEntropyModel(1, kernel_size).context_prediction.mask[0, 0]
    pad = kernel_size // 2
    for (row, col), step in steps.items():
        for dr, dc in (mask.nonzero() - pad).tolist():
            neighbour = (row + dr, col + dc)
            if neighbour in steps:
                assert steps[neighbour] < step, (row, col, neighbour)


def test_wavefront_step_count():
    assert len(wavefront_schedule(32, 32, 5)) == 32 + 3 * 31
    assert len(serial_schedule(32, 32)) == 32 * 32


def random_latent(M=16, height=6, width=9, seed=0):
    torch.manual_seed(seed)
    model = AutoregressiveEntropyModel(M).eval()
    y_hat = torch.round(torch.randn(1, M, height, width) * 3)
    return model, y_hat


def test_wavefront_decodes_what_serial_decodes_and_sizes_agree():
    model, y_hat = random_latent()
    serial = encode_latent(model, y_hat, order="serial")
    wavefront = encode_latent(model, y_hat, order="wavefront")
    assert torch.equal(decode_latent(model, serial, (6, 9), order="serial"), y_hat)
    assert torch.equal(decode_latent(model, wavefront, (6, 9), order="wavefront"), y_hat)
    # same symbols and (up to float rounding) the same tables: sizes within 0.1 % (+ flush)
    assert abs(len(wavefront) - len(serial)) <= max(0.001 * len(serial), 4)


def test_decoding_is_thread_count_invariant():
    model, y_hat = random_latent(M=24, height=8, width=8, seed=1)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        payload = encode_latent(model, y_hat)
        decoded_two = decode_latent(model, payload, (8, 8))
        torch.set_num_threads(1)
        decoded_one = decode_latent(model, payload, (8, 8))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(decoded_one, y_hat) and torch.equal(decoded_two, y_hat)


def test_codec_streams_record_their_order():
    torch.manual_seed(0)
    codec = BaseCodec(codec_preset("tiny"), "reconstruction").eval()
    with torch.no_grad():
        codec.f_b.layers[-1].weight.mul_(200)
    x = torch.rand(1, 3, 48, 64)
    serial, wavefront = (decompress(codec, compress(codec, x, o)).y_hat for o in CODING_ORDERS)
    assert torch.equal(serial, wavefront)
    with pytest.raises(ValueError, match="valid: serial, wavefront"):
        compress(codec, x, "zigzag")



@pytest.mark.parametrize("order", CODING_ORDERS.names())
@pytest.mark.parametrize("conditional", [False, True])
def test_coder_parameters_match_the_parallel_forward_pass(order, conditional):
    torch.manual_seed(0)
    if conditional:
        model = ConditionalEntropyModel(M=6, base_channels=4, blocks=1).eval()
        base = torch.round(torch.randn(1, 4, 5, 7) * 2)
    else:
        model, base = AutoregressiveEntropyModel(M=6).eval(), None
    y_hat = torch.round(torch.randn(1, 6, 5, 7) * 3)
    with torch.no_grad():
        expected = model(y_hat, base)
        side = None if base is None else model.side_information(base, y_hat)
    means = torch.zeros_like(y_hat)
    scales = torch.zeros_like(y_hat)

    def code(rows, cols, step_means, step_scales):
        means[0][:, rows, cols] = step_means.T
        scales[0][:, rows, cols] = step_scales.T
        return y_hat[0][:, rows, cols].T

    assert torch.equal(entropy_pass(model, side, (5, 7), order, code), y_hat)
    torch.testing.assert_close(means, expected.means, rtol=1e-5, atol=1e-5)
    bounded = model.gaussian_conditional.lower_bound_scale(expected.scales)
    torch.testing.assert_close(scales, bounded, rtol=1e-5, atol=1e-5)


def reference_pass(model, side, size, order, code):
    """The first implementation of entropy_pass: 2-D advanced indexing and
    pointwise_parameters per step. The faster pass must compute the same means and scales bit
    for bit, so that its speed-up changes no stream."""
    height, width = size
    pad = model.kernel_size // 2
    padded = torch.zeros(1, model.M, height + 2 * pad, width + 2 * pad)
    taps = model.context_prediction.mask[0, 0].nonzero()
    weight = model.masked_weight()[:, :, taps[:, 0], taps[:, 1]].flatten(1)
    for rows, cols in CODING_ORDERS.get(order)(height, width, model.kernel_size):
        crops = padded[0][:, rows[:, None] + taps[:, 0], cols[:, None] + taps[:, 1]]
        context = torch.nn.functional.linear(
            crops.transpose(0, 1).flatten(1), weight, model.context_prediction.bias
        )
        side_at = None if side is None else side[0][:, rows, cols].T
        means, scales = model.pointwise_parameters(context, side_at)
        values = code(rows, cols, means, model.gaussian_conditional.lower_bound_scale(scales))
        padded[0][:, rows + pad, cols + pad] = values.T
    return padded[:, :, pad : pad + height, pad : pad + width]


@pytest.mark.parametrize("order", CODING_ORDERS.names())
@pytest.mark.parametrize("conditional", [False, True])
def test_entropy_pass_computes_the_parameters_of_the_reference_loop_bit_for_bit(
    order, conditional
):
    torch.manual_seed(2)
    if conditional:
        model = ConditionalEntropyModel(M=8, base_channels=4, blocks=1).eval()
        side = model.side_information(torch.round(torch.randn(1, 4, 6, 9)), torch.empty(1, 8, 6, 9))
    else:
        model, side = AutoregressiveEntropyModel(M=24).eval(), None
    y_hat = torch.round(torch.randn(1, model.M, 6, 9) * 3)

    def recorder(log):
        def code(rows, cols, means, scales):
            log.append((rows.clone(), cols.clone(), means.clone(), scales.clone()))
            return y_hat[0][:, rows, cols].T

        return code

    fast, reference = [], []
    with torch.no_grad():
        assert torch.equal(entropy_pass(model, side, (6, 9), order, recorder(fast)), y_hat)
        assert torch.equal(reference_pass(model, side, (6, 9), order, recorder(reference)), y_hat)
    assert len(fast) == len(reference)
    for got, want in zip(fast, reference, strict=True):
        for a, b in zip(got, want, strict=True):
            assert torch.equal(a, b)
