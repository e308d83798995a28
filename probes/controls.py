"""Controls of a probe: does it find information that is not there?

:func:`shuffled_control` refits a probe on shuffled representations (a derangement of images,
:func:`shuffle_representation`): ``I_V`` must be at or below 0, a CI above
:data:`SHUFFLE_TOLERANCE` flags a leak. :func:`control_task` is Hewitt & Liang's (2019)
control task for any target: selectivity is ``I_V(real) - I_V(control)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from probes.estimator import VInfoProbe
from probes.probe_data import PerImageBits, ProbeData, ProbeSplits, as_probe_data
from probes.storage import allocate, gather_rows, row_chunks


def shuffle_representation(data: ProbeData, seed: int = 0) -> ProbeData:
    """Pair every target with another image's representation (a derangement of images).

    The shuffled-representation control: a probe fitted and scored on shuffled splits must give
    ``I_V ≈ 0`` or below; a clearly positive value means the probe leaks or overfits.
    """
    data = as_probe_data(data)
    n = data.y.shape[0]
    if n < 2:
        raise ValueError("shuffling needs at least two images")
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=generator)
    shift = torch.roll(order, 1)  # a cyclic shift of a random order has no fixed point
    permutation = torch.empty_like(order)
    permutation[order] = shift
    return ProbeData(gather_rows(data.y, permutation), data.z, data.mask)


def shuffled_control(probe: VInfoProbe, splits: ProbeSplits, seed: int = 0) -> PerImageBits:
    """Per-image test bits of a fresh copy of ``probe`` fitted on shuffled representations.

    The targets are unchanged by the shuffle, so the copy reuses ``probe``'s fitted null; with
    a converged null and a family that does not leak, its ``I_V`` is at or below 0 (a CI above
    0 flags the probe). Score it with :func:`probes.uncertainty.bootstrap_ratio` of
    ``null - cond``.
    """
    shuffled = [shuffle_representation(split, seed + i) for i, split in enumerate(splits)]
    fitted = probe.clone().fit(shuffled[0], shuffled[1], null_from=probe)
    return fitted.per_image_bits(shuffled[2])


def control_task(splits: ProbeSplits, seed: int = 0, decimals: int = 0) -> ProbeSplits:
    """A control task in the sense of Hewitt & Liang (2019) for any target.

    Every *type* of representation vector (the ``C`` values of ``y`` at one latent position,
    rounded to ``decimals``: a codec's integer ``ŷ`` repeats them) is given one random target
    patch (the ``s×s`` target pixels, with their mask, of a random latent position of a random
    training image). The control target of a position is its type's patch, in every split:
    a function of the representation with the targets' patch marginals but no relation to the
    real target, so ``I_V`` on it measures what a family can memorise. Selectivity is
    ``I_V(real) - I_V(control)``.

    Args:
        splits: train, val, test of one representation and target.
        seed: seed of the patch draw.
        decimals: rounding of ``y`` that defines a type.

    Returns:
        :class:`ProbeSplits` with the same ``y`` and the control targets (and masks), allocated
        by :func:`probes.storage.allocate` (on disk beyond the memory budget) and written
        one chunk of training images at a time: no temporary holds all targets.
    """
    parts = [as_probe_data(split) for split in splits]
    train = parts[0]
    factor = train.z.shape[-1] // train.y.shape[-1]
    _, c_y, h, w = train.y.shape
    positions = h * w
    # the type of every latent position of every split, chunk by chunk into one sort
    vectors = torch.cat([torch.round(part.y[rows].permute(0, 2, 3, 1).reshape(-1, c_y)
                                     * 10**decimals)
                         for part in parts for rows in row_chunks(part.y)])
    _, types = torch.unique(vectors, dim=0, return_inverse=True)
    del vectors
    generator = torch.Generator().manual_seed(seed)
    n_train = train.y.shape[0]
    draw = torch.randint(0, n_train * positions, (int(types.max()) + 1,), generator=generator)
    source = draw[types]  # the training position whose patch each position gets
    del types, draw
    order = torch.argsort(source, stable=True)
    sorted_source = source[order]
    del source
    has_mask = any(part.mask is not None for part in parts)
    outputs, offsets, start = [], [], 0
    for part in parts:
        n = part.y.shape[0]
        z = allocate(tuple(part.z.shape), part.z.dtype)
        mask = allocate((n, 1, *part.z.shape[-2:]), torch.bool) if has_mask else None
        outputs.append((z, mask))
        offsets.append(start)
        start += n * positions
    bounds = torch.tensor(offsets[1:] + [start])

    def patch_view(values: Tensor) -> Tensor:  # (n, C, s·h, s·w) → (n, h, w, C, s, s) view
        n, c = values.shape[:2]
        return values.view(n, c, h, factor, w, factor).permute(0, 2, 4, 1, 3, 5)

    for rows in row_chunks(train.z):
        first, last = rows.start * positions, rows.stop * positions
        lo, hi = (int(i) for i in torch.searchsorted(sorted_source,
                                                     torch.tensor([first, last])))
        if lo == hi:
            continue
        taken = sorted_source[lo:hi] - first  # positions within this chunk
        patches = patch_view(train.z[rows].contiguous()).reshape(-1, *train.z.shape[1:2],
                                                                 factor, factor)[taken]
        if has_mask:
            chunk_mask = (train.mask[rows] if train.mask is not None else torch.ones(
                rows.stop - rows.start, 1, *train.z.shape[-2:], dtype=torch.bool))
            mask_patches = patch_view(chunk_mask.bool().contiguous()).reshape(
                -1, 1, factor, factor)[taken]
        target = order[lo:hi]
        split = torch.bucketize(target, bounds, right=True)
        for k, (z, mask) in enumerate(outputs):
            pick = split == k
            if not bool(pick.any()):
                continue
            local = target[pick] - offsets[k]
            image, pos = local // positions, local % positions
            patch_view(z)[image, pos // w, pos % w] = patches[pick].to(z.dtype)
            if mask is not None:
                patch_view(mask)[image, pos // w, pos % w] = mask_patches[pick]
    return ProbeSplits(*(ProbeData(part.y, z, mask)
                    for part, (z, mask) in zip(parts, outputs, strict=True)))


SHUFFLE_TOLERANCE = 0.01
"""Bits per pixel above which the shuffled control is flagged, if its CI (when computed) also
lies above 0: a CI above 0 alone flags leaks of a few thousandths of a bit."""


__all__ = ["SHUFFLE_TOLERANCE", "control_task", "shuffle_representation", "shuffled_control"]
