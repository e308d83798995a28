"""The one split rule of vinfo.data.splits, and that experiments and probes keep their splits."""

import dataclasses

import pytest
import torch

from probes.sources import SYNTHETIC_SPLIT_SEEDS as PROBE_SPLIT_SEEDS
from probes.sources import DataSource, split_positions
from vinfo.data import (
    PRESETS,
    SYNTHETIC_SPLIT_SEEDS,
    SyntheticConfig,
    SyntheticScenes,
    holdout_size,
    partition,
    split_sizes,
    synthetic_split_config,
)
from vinfo.experiments.datasets import split_indices, synthetic_splits

# Computed with the two rules this module replaced (vinfo.experiments.datasets.split_indices and
# probes.sources.split_positions before the merge): results directories written with them must
# keep the same images in the same splits.
PROBE_VAL_256 = [9, 18, 27, 28, 30, 36, 43, 45, 46, 60, 69, 74, 76, 78, 85, 89, 92, 93, 101, 103,
                 109, 117, 128, 131, 139, 141, 146, 152, 155, 160, 168, 182, 184, 190, 194, 195,
                 202, 206, 217, 219, 221, 223, 227, 228, 235, 236, 243, 244, 251, 253, 255]
PROBE_TEST_256 = [6, 14, 15, 19, 22, 25, 32, 37, 41, 42, 52, 58, 64, 68, 70, 82, 83, 90, 97, 100,
                  104, 108, 111, 112, 116, 118, 122, 124, 126, 134, 135, 145, 148, 167, 170, 178,
                  181, 197, 201, 205, 207, 208, 220, 226, 229, 238, 241, 247, 249, 252, 254]
PROBE_VAL_64 = [0, 5, 18, 23, 26, 27, 34, 38, 41, 43, 50, 56, 62]
PROBE_TEST_64 = [7, 12, 20, 24, 25, 29, 30, 36, 37, 39, 53, 57, 58]


def _rest(n, *parts):
    taken = {i for part in parts for i in part}
    return [i for i in range(n) if i not in taken]


def test_experiment_splits_are_the_index_ranges_of_before():
    assert split_indices(256) == (range(0, 192), range(192, 224), range(224, 256))  # tiny
    assert split_indices(64) == (range(0, 48), range(48, 56), range(56, 64))  # micro
    assert split_indices(10, 0.1, 0.3) == (range(0, 6), range(6, 7), range(7, 10))
    # 1 - 0.059 - 0.076 + 0.059 + 0.076 is 1 + 2^-52: normalising by it would turn the test
    # share 125 * 0.076 = 9.5 into 9.4999..., 9 images instead of the 10 round(9.5) gives
    assert split_indices(125, 0.059, 0.076) == (range(0, 108), range(108, 115), range(115, 125))
    contiguous = partition(256, (0.75, 0.125, 0.125))
    assert [p.tolist() for p in contiguous] == [list(r) for r in split_indices(256)]


@pytest.mark.parametrize(("n", "val", "test"), [
    (256, PROBE_VAL_256, PROBE_TEST_256),
    (64, PROBE_VAL_64, PROBE_TEST_64),
])
def test_probe_splits_are_the_permutation_of_before(n, val, test):
    expected = [_rest(n, val, test), val, test]
    assert [p.tolist() for p in split_positions(n, seed=0)] == expected
    assert [p.tolist() for p in partition(n, (0.6, 0.2, 0.2), seed=0)] == expected
    # unnormalised fractions describe the same shares
    assert [p.tolist() for p in partition(n, (3, 1, 1), seed=0)] == expected


def test_sizes_round_half_to_even_and_give_train_the_rest():
    assert split_sizes(20, (0.75, 0.125, 0.125)) == (16, 2, 2)  # 2.5 -> 2
    assert split_sizes(28, (0.75, 0.125, 0.125)) == (20, 4, 4)  # 3.5 -> 4
    assert split_sizes(10, (0.98, 0.01, 0.01)) == (8, 1, 1)  # val and test never empty
    assert holdout_size(2975, 0.125) == 372  # Cityscapes train: 2603 train + 372 val
    assert holdout_size(3, 0.01) == 1


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    ((4, (0.6, 0.2, 0.2)), {"min_sizes": (1, 1, 2)},
     "too few images: 4 give 2 train, 1 val and 1 test images; need at least 1, 1 and 2"),
    ((2, (0.6, 0.2, 0.2)), {}, "too few images: 2 give 0 train"),
    ((20, (1, 0, 1)), {}, "three positive numbers"),
    ((20, (0.5, 0.5)), {}, "three positive numbers"),
    ((20, (0.5, float("nan"), 0.2)), {}, "three positive numbers"),
])
def test_bad_sizes_are_refused_with_one_message(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        split_sizes(*args, **kwargs)
    with pytest.raises(ValueError, match=message):
        partition(*args, **kwargs)


def test_a_seeded_partition_is_a_deterministic_sorted_cover():
    train, val, test = partition(30, (0.6, 0.2, 0.2), seed=5)
    assert (len(train), len(val), len(test)) == (18, 6, 6)
    assert sorted(torch.cat([train, val, test]).tolist()) == list(range(30))
    for part in (train, val, test):
        assert part.dtype == torch.int64 and torch.equal(part, part.sort().values)
    again = partition(30, (0.6, 0.2, 0.2), seed=5)
    assert all(torch.equal(a, b) for a, b in zip((train, val, test), again, strict=True))
    assert not torch.equal(test, partition(30, (0.6, 0.2, 0.2), seed=6).test)
    assert partition(30, (0.6, 0.2, 0.2)).test.tolist() == list(range(24, 30))


def test_synthetic_splits_are_the_preset_drawn_with_offset_seeds():
    assert PROBE_SPLIT_SEEDS is SYNTHETIC_SPLIT_SEEDS  # probes re-export the one table
    assert synthetic_split_config("tiny", "train") == PRESETS["tiny"]
    assert synthetic_split_config("tiny", "val") == dataclasses.replace(PRESETS["tiny"], seed=1)
    custom = SyntheticConfig.preset("micro", num_images=5, seed=10)
    assert synthetic_split_config(custom, "test").seed == 12
    assert synthetic_split_config(custom, "test").num_images == 5
    with pytest.raises(ValueError, match="unknown synthetic split 'holdout'; valid: train"):
        synthetic_split_config("tiny", "holdout")


def test_experiments_train_on_the_train_split_and_probes_read_fresh_images():
    micro = SyntheticConfig.preset("micro")
    splits = synthetic_splits(micro)
    assert splits.train.dataset.config == synthetic_split_config(micro, "train")
    assert torch.equal(splits.test[0].image, SyntheticScenes(micro)[56].image)
    probe_val = DataSource(preset="micro", split="val").build()
    assert probe_val.config == synthetic_split_config("micro", "val")
    assert not torch.equal(probe_val[56].image, splits.test[0].image)
