import pytest
import torch
from safetensors.torch import save_file

from probes.bundles import BundleError, load_bundle, save_bundle


def test_round_trip_keeps_tensors_ids_and_metadata(tmp_path):
    y_hat = torch.randn(3, 4, 2, 2)
    ids = torch.tensor([5, 1, 9])
    path = tmp_path / "repr.safetensors"
    save_bundle(path, y_hat, ids, {"dataset": "synthetic", "split": "test"})
    bundle = load_bundle(path)
    assert torch.equal(bundle.y_hat, y_hat) and torch.equal(bundle.sample_ids, ids)
    assert bundle.metadata["dataset"] == "synthetic" and bundle.metadata["format"]
    assert torch.equal(bundle.select(torch.tensor([9, 5])), y_hat[[2, 0]])
    with pytest.raises(BundleError, match="not in the bundle"):
        bundle.select(torch.tensor([2]))
    assert [p.name for p in tmp_path.iterdir()] == ["repr.safetensors"]


@pytest.mark.parametrize(("y_hat", "ids", "message"), [
    (torch.randn(3, 4, 2), torch.arange(3), "must be \\(N, C, h, w\\)"),
    (torch.randn(3, 4, 2, 2), torch.arange(2), "3 representations but 2"),
    (torch.randn(2, 4, 2, 2), torch.tensor([1, 1]), "repeat"),
    (torch.randn(2, 4, 2, 2), torch.tensor([0.0, 1.0]), "integer"),
    (torch.full((2, 1, 1, 1), float("nan")), torch.arange(2), "NaN"),
])
def test_invalid_bundles_are_refused_before_writing(tmp_path, y_hat, ids, message):
    path = tmp_path / "bad.safetensors"
    with pytest.raises(BundleError, match=message):
        save_bundle(path, y_hat, ids)
    assert not path.exists()


def test_loading_refuses_foreign_files(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x80\x04not a safetensors file")
    with pytest.raises(BundleError, match="not a safetensors"):
        load_bundle(junk)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"y_hat": torch.zeros(1, 1, 1, 1)}, str(foreign))
    with pytest.raises(BundleError, match="not a vinfo representation bundle"):
        load_bundle(foreign)
    missing = tmp_path / "missing.safetensors"
    save_file({"y_hat": torch.zeros(1, 1, 1, 1)}, str(missing),
              metadata={"format": "vinfo.representation"})
    with pytest.raises(BundleError, match="missing tensors sample_ids"):
        load_bundle(missing)
    with pytest.raises(FileNotFoundError):
        load_bundle(tmp_path / "absent.safetensors")
