"""Probe data larger than memory: mapped safetensors, disk-backed arrays, chunked statistics."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from probes import storage
from probes.bundles import load_bundle, save_bundle
from probes.closed_form import linear_gaussian_closed_form
from probes.estimator import VInfoProbe
from probes.heads import get_target
from probes.pipeline import probe_files
from probes.probe_data import ProbeData
from probes.storage import (
    allocate,
    channel_moments,
    gather_rows,
    map_safetensors,
    parse_bytes,
    write_safetensors,
)
from vinfo.metrics import psnr


def tensors():
    generator = torch.Generator().manual_seed(0)
    return {
        "f32": torch.randn(5, 3, 2, generator=generator),
        "f64": torch.randn(4, dtype=torch.float64, generator=generator),
        "i64": torch.arange(7),
        "u8": torch.arange(12, dtype=torch.uint8).view(3, 4),
        "mask": torch.rand(4, 2, generator=generator) > 0.5,
        "empty": torch.zeros(0, 3),
    }


def test_written_files_are_safetensors_and_mapped_files_read_back(tmp_path):
    written = tmp_path / "w.safetensors"
    write_safetensors(written, tensors(), {"k": "v"})
    assert {name: torch.equal(value, tensors()[name])
            for name, value in load_file(written).items()} == dict.fromkeys(tensors(), True)
    reference = tmp_path / "r.safetensors"
    save_file(tensors(), reference, metadata={"k": "v"})
    mapped, metadata = map_safetensors(reference)
    assert metadata == {"k": "v"}
    assert all(torch.equal(mapped[name], tensors()[name]) for name in tensors())
    mapped["f32"][0] = 100.0  # copy-on-write: the file keeps its values
    assert torch.equal(load_file(reference)["f32"], tensors()["f32"])


def test_tensors_start_aligned_and_scalars_round_trip(tmp_path):
    path = tmp_path / "a.safetensors"
    odd = {"y_hat": torch.randn(3, 1, 1, 1), "flag": torch.tensor(True),
           "scalar": torch.tensor(2.5), "sample_ids": torch.arange(3)}
    write_safetensors(path, odd)
    entries, _, start = storage.read_header(path)
    assert start % 8 == 0
    for name, entry in entries.items():  # every tensor starts at a multiple of its width
        assert entry["data_offsets"][0] % odd[name].element_size() == 0, name
    assert all(torch.equal(value, odd[name]) for name, value in load_file(path).items())
    assert all(torch.equal(value, odd[name]) for name, value in map_safetensors(path)[0].items())


def test_unreadable_headers_are_storage_errors(tmp_path):
    import json
    import struct

    def file_with(header):
        text = json.dumps(header).encode()
        path = tmp_path / "h.safetensors"
        path.write_bytes(struct.pack("<Q", len(text)) + text + bytes(8))
        return path

    with pytest.raises(storage.StorageError, match="metadata is not string to string"):
        map_safetensors(file_with({"__metadata__": ["x"]}))
    with pytest.raises(storage.StorageError, match="dtype BF16, which vinfo does not read"):
        map_safetensors(file_with({"w": {"dtype": "BF16", "shape": [4],
                                         "data_offsets": [0, 8]}}))
    with pytest.raises(storage.StorageError, match="does not fit the file"):
        map_safetensors(file_with({"w": {"dtype": "F32", "shape": [4],
                                         "data_offsets": [0, 16]}}))


@pytest.mark.parametrize("content", [b"", b"\x80\x04pickle", b"\xff" * 8 + b"{}"])
def test_non_safetensors_files_are_refused(tmp_path, content):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(storage.StorageError, match="not a safetensors file"):
        map_safetensors(path)


def test_arrays_beyond_the_budget_live_in_deleted_scratch_files(tmp_path, monkeypatch):
    monkeypatch.setenv("VINFO_SCRATCH_DIR", str(tmp_path))
    opened = []
    real = tempfile.TemporaryFile

    def spy(*args, **kwargs):
        opened.append(kwargs.get("dir"))
        return real(*args, **kwargs)

    monkeypatch.setattr(storage.tempfile, "TemporaryFile", spy)
    small = allocate((10, 10), torch.float32, budget=400)
    assert opened == [] and small.shape == (10, 10)
    large = allocate((10, 11), torch.float32, budget=400)
    assert opened == [tmp_path] and list(tmp_path.iterdir()) == []  # unlinked at once
    large[:] = torch.arange(110.0).view(10, 11)
    assert float(large.sum()) == sum(range(110))
    source = torch.randn(30, 2, 3)
    index = torch.tensor([29, 0, 4, 4, 17])
    assert torch.equal(gather_rows(source, index, budget=0), source[index])


def test_sizes_parse_with_binary_units():
    assert [parse_bytes(text) for text in ("1024", "512M", "4G", "1.5k", "2GiB")] == [
        1024, 512 << 20, 4 << 30, 1536, 2 << 30]
    with pytest.raises(ValueError, match="not a size in bytes"):
        parse_bytes("lots")


def test_a_bad_memory_budget_names_its_variable(monkeypatch):
    monkeypatch.setenv("VINFO_PROBE_MEMORY", "lots")
    with pytest.raises(ValueError, match="^VINFO_PROBE_MEMORY: not a size in bytes"):
        allocate((2, 2), torch.float32)
    monkeypatch.setenv("VINFO_PROBE_MEMORY", "1K")
    assert storage.memory_budget() == 1024


def test_channel_moments_match_torch_in_any_chunking(monkeypatch):
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(9, 3, 5, 4, generator=generator) * 10 + 1000  # a large mean: no cancellation
    mask = torch.rand(9, 1, 5, 4, generator=generator) > 0.3
    x = x.masked_fill(~mask, float("nan"))  # masked-out values may be anything
    monkeypatch.setattr(storage, "CHUNK_BYTES", 100)  # one image per chunk
    moments = channel_moments(x, mask)
    for c in range(3):
        values = x[:, c][mask[:, 0]].double()
        assert moments.count[c] == values.numel()
        assert float(moments.mean[c]) == pytest.approx(float(values.mean()), rel=1e-12)
        assert float(moments.m2[c]) == pytest.approx(float(values.var(correction=0))
                                                     * values.numel(), rel=1e-9)
    count, mean, m2 = moments.pooled()
    pooled = x.permute(1, 0, 2, 3)[:, mask[:, 0]].double()
    assert (count, mean) == (pooled.numel(), pytest.approx(float(pooled.mean()), rel=1e-12))
    assert m2 == pytest.approx(float(pooled.var(correction=0)) * pooled.numel(), rel=1e-9)
    head = get_target("depth").make_head().fitted_to(x, mask)
    assert (head.loc, head.scale) == (pytest.approx(float(pooled.mean()), rel=1e-12),
                                      pytest.approx(float(pooled.std()), rel=1e-9))


def test_chunked_closed_form_and_metrics_equal_the_whole_array_ones(monkeypatch):
    generator = torch.Generator().manual_seed(2)
    y = torch.randn(24, 4, 2, 2, generator=generator)
    z = 10 + torch.nn.functional.interpolate(y[:, :1], scale_factor=8) \
        + 0.3 * torch.randn(24, 1, 16, 16, generator=generator)  # positive depths
    mask = torch.rand(24, 1, 16, 16, generator=generator) > 0.2
    data = ProbeData(y, z.masked_fill(~mask, float("nan")), mask)
    whole = linear_gaussian_closed_form(data)
    probe = VInfoProbe("linear", "depth", max_epochs=1).fit(data, data)
    monkeypatch.setattr(storage, "CHUNK_BYTES", 1024)  # one image per chunk
    chunked = linear_gaussian_closed_form(data)
    for a, b in zip(whole, chunked, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # the batch-accumulated task metric: PSNR is the mean of per-image PSNRs
    pixels = torch.sigmoid(torch.nn.functional.interpolate(y[:, :3], scale_factor=8))
    images = ProbeData(y, pixels, None)
    recon = VInfoProbe("linear", "reconstruction", max_epochs=1, batch_size=5)
    recon.fit(images, images)
    assert recon.evaluate(images).metric_value == pytest.approx(
        float(psnr(recon.predict(y), pixels, data_range=1.0)), rel=1e-6)
    rmse = probe.evaluate(data).metric_value
    error = (probe.predict(y) - z)[mask]
    assert rmse == pytest.approx(float(error.square().mean().sqrt()), rel=1e-5)


def test_disk_backed_probes_equal_in_memory_probes(tmp_path, monkeypatch):
    """With the memory budget at 0 every large array goes to disk and every pass is chunked;
    the probe results must not change."""
    from probes.sources import DataSource

    ids = torch.arange(12)
    dataset = DataSource(preset="micro", n_images=12).build()
    image = torch.stack([dataset[i].image for i in range(12)])
    pooled = torch.nn.functional.avg_pool2d(image, 16)  # (12, 3, 2, 2): knows the colours
    save_bundle(tmp_path / "pooled.safetensors", pooled, ids,
                {"preset": "micro", "n_images": "12"})
    save_bundle(tmp_path / "noise.safetensors", torch.randn(12, 3, 2, 2), ids,
                {"preset": "micro", "n_images": "12"})
    paths = [tmp_path / "pooled.safetensors", tmp_path / "noise.safetensors"]
    kwargs = dict(targets=["reconstruction", "depth", "segmentation"], families=["linear"],
                  n_resamples=0, probe_kwargs={"max_epochs": 2})  # 3 test images: no CI
    in_memory = probe_files(paths, **kwargs)
    monkeypatch.setenv("VINFO_PROBE_MEMORY", "0")
    monkeypatch.setenv("VINFO_SCRATCH_DIR", str(tmp_path / "scratch"))
    monkeypatch.setattr(storage, "CHUNK_BYTES", 4096)
    opened = []
    real = tempfile.TemporaryFile
    monkeypatch.setattr(storage.tempfile, "TemporaryFile",
                        lambda *a, **k: opened.append(1) or real(*a, **k))
    on_disk = probe_files(paths, **kwargs)
    # targets of 3 tasks, 2 gathered representations, 2 shuffled controls per task at least
    assert len(opened) >= 3 + 2 + 6
    columns = ["iv", "h_null", "h_cond", "metric_value", "shuffled_iv"]
    torch.testing.assert_close(torch.tensor(on_disk.frame[columns].to_numpy()),
                               torch.tensor(in_memory.frame[columns].to_numpy()),
                               rtol=1e-4, atol=1e-5, equal_nan=True)
    for a, b in zip(on_disk.inputs.sample_ids, in_memory.inputs.sample_ids, strict=True):
        assert torch.equal(a, b)
    assert list((tmp_path / "scratch").iterdir()) == []


def test_bundles_are_mapped_not_read(tmp_path):
    y = torch.randn(6, 2, 1, 1)
    save_bundle(tmp_path / "b.safetensors", y, torch.arange(6))
    bundle = load_bundle(tmp_path / "b.safetensors")
    assert torch.equal(bundle.y_hat, y) and torch.equal(bundle.select(torch.tensor([5, 1])),
                                                        y[[5, 1]])
    bundle.y_hat[0] = 7.0  # a private copy of the page: the file is unchanged
    assert torch.equal(load_bundle(tmp_path / "b.safetensors").y_hat, y)


MEMORY_CHILD = Path(__file__).with_name("memory_child.py")


def _peak_anonymous_growth(n: int, directory: Path) -> float:
    # glibc keeps freed buffers in its heap (a dynamic mmap threshold, fragmentation), so
    # RssAnon would show the history of the heap; with every buffer from 64 kB up mmapped and
    # unmapped on free, it shows live memory (measured: 107.2 MB at 500 images, 107.1 at 2500,
    # mostly the discretized null's 256-level histograms, whose size is the image size's)
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(1 << 16), "VINFO_PROBE_MEMORY": "0",
           "VINFO_SCRATCH_DIR": str(directory)}
    result = subprocess.run([sys.executable, str(MEMORY_CHILD), str(n), str(directory)],
                            env=env, capture_output=True, text=True, check=True)
    return float(result.stdout.split()[-1])


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads /proc (Linux)")
def test_peak_memory_does_not_grow_with_the_number_of_images(tmp_path):
    """Fitting, scoring and the shuffled control on memory-mapped data: five times the images
    (about 100 MB more targets) must not cost a tenth of that in anonymous memory."""
    small, large = 500, 2500
    growth_small = _peak_anonymous_growth(small, tmp_path)
    growth_large = _peak_anonymous_growth(large, tmp_path)
    more_data = (large - small) * (3 * 64 * 64 + 8 * 4 * 4) * 4 / 1024  # kB
    assert growth_large - growth_small < 0.1 * more_data, (growth_small, growth_large)
