"""Run by test_probes_storage: probe memory-mapped data of N images in a fresh process and
print the peak growth of its anonymous memory (kB) while the probes run.

Usage: python memory_child.py N DIRECTORY
"""

import sys
import threading
import time
from pathlib import Path

import torch

from probes import storage
from probes.probe_data import ProbeData, ProbeSplits
from probes.study import run_probes


def anonymous_kb() -> int:
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("RssAnon"))


def main(n: int, directory: Path) -> None:
    torch.set_num_threads(1)
    storage.CHUNK_BYTES = 2 << 20
    generator = torch.Generator().manual_seed(0)
    # y (N, 8, 4, 4) and 8-bit images z (N, 3, 64, 64) that depend on y, written in chunks
    y_all = storage.allocate((n, 8, 4, 4), torch.float32, budget=0)
    z_all = storage.allocate((n, 3, 64, 64), torch.float32, budget=0)
    for start in range(0, n, 250):
        y = torch.randn(min(250, n - start), 8, 4, 4, generator=generator)
        y_all[start:start + len(y)] = y
        z = torch.nn.functional.interpolate(y[:, :3], scale_factor=16).sigmoid()
        z_all[start:start + len(y)] = (z * 255).round() / 255
    path = directory / f"data{n}.safetensors"
    storage.write_safetensors(path, {"y": y_all, "z": z_all})
    del y_all, z_all
    mapped, _ = storage.map_safetensors(path)
    y, z = mapped["y"], mapped["z"]
    a, b = int(0.6 * n), int(0.8 * n)
    splits = ProbeSplits(*(ProbeData(y[s], z[s]) for s in (slice(0, a), slice(a, b), slice(b, n))))
    base = peak = anonymous_kb()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, anonymous_kb())
            time.sleep(0.002)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    run_probes({"r": {"reconstruction": splits}}, families=("linear",), seeds=(0,),
               n_resamples=50, probe_kwargs={"max_epochs": 2})
    done.set()
    thread.join()
    print(peak - base)


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]))
