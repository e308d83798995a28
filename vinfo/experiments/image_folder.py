"""Kodak-style evaluation of a reconstruction codec on a folder of images, with CompressAI's
conventions (``compressai.utils.eval_model``), so its numbers sit beside CompressAI's own.

- Images are read as CompressAI reads them (:class:`vinfo.data.ImageFolder`: sorted, every
  sub-folder, converted to RGB), each at its own size. vinfo's codecs replicate-pad an image to
  their stride of 16 and crop the output back (CompressAI zero-pads to 64); every rate is
  charged to the image's own ``H × W`` pixels.
- ``psnr-rgb`` and ``ms-ssim-rgb`` are CompressAI's: both images rounded to 8 bits first,
  PSNR with a peak of 255, MS-SSIM by ``pytorch_msssim`` (the package CompressAI uses;
  ``NaN`` for images with a side of 160 pixels or fewer, which it refuses).
- ``bpp`` is the length of the real bitstreams (:func:`vinfo.coding.compress`, headers
  included: base plus enhancement stream for a scalable codec) over ``H · W``, as CompressAI's
  ``inference``; ``bpp_estimated`` is the entropy model's ``−Σ log2 p / (H · W)``, as its
  ``--entropy-estimation``. With ``bitstreams=False`` the estimate stands in for ``bpp``.
- The summary is the mean of the per-image values (CompressAI's ``eval_model``), and
  :meth:`FolderEvaluation.compressai_results` writes CompressAI's results JSON
  (``{"name", "description", "results": {metric: [value per model]}}``), which
  ``vinfo bdrate`` reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from pytorch_msssim import ms_ssim
from torch import Tensor, nn

from vinfo.data.images import ImageFolder
from vinfo.experiments.evaluate import estimated_bits, stream_bits, task_name
from vinfo.metrics import psnr

MAX_VALUE = 255
"""Images are rounded to 8 bits before the metrics, as CompressAI's ``compute_metrics``."""
MS_SSIM_MIN_SIDE = 161
"""``pytorch_msssim`` needs image sides above 160 pixels for its 5 scales."""
COLUMNS = ("image", "height", "width", "bpp", "bpp_estimated", "psnr-rgb", "ms-ssim-rgb")
"""Per-image columns; CompressAI's metric names where it has them."""
MEAN_COLUMNS = ("bpp", "bpp_estimated", "psnr-rgb", "ms-ssim-rgb")


def compressai_metrics(original: Tensor, reconstruction: Tensor) -> dict[str, float]:
    """CompressAI's ``compute_metrics`` of one image pair ``(1, 3, H, W)`` in ``[0, 1]``:
    ``psnr-rgb`` (dB) and ``ms-ssim-rgb`` on 8-bit rounded images (``NaN`` below
    :data:`MS_SSIM_MIN_SIDE`)."""
    org = (original * MAX_VALUE).clamp(0, MAX_VALUE).round()
    rec = (reconstruction * MAX_VALUE).clamp(0, MAX_VALUE).round()
    metrics = {"psnr-rgb": float(psnr(rec, org, data_range=MAX_VALUE))}
    small = min(original.shape[-2:]) < MS_SSIM_MIN_SIDE
    metrics["ms-ssim-rgb"] = math.nan if small else float(ms_ssim(org, rec,
                                                                  data_range=MAX_VALUE))
    return metrics


@dataclass(frozen=True)
class FolderEvaluation:
    """One codec on one image folder.

    Attributes:
        name: the codec's name (the checkpoint's stem).
        folder: the folder read.
        rows: one row per image, :data:`COLUMNS`.
        skipped: ``(file, reason)`` of the files that could not be read.
        bitstreams: whether ``bpp`` is the real streams' (else the estimate).
    """

    name: str
    folder: str
    rows: pd.DataFrame
    skipped: tuple[tuple[str, str], ...] = ()
    bitstreams: bool = True

    def means(self) -> dict[str, float]:
        """The mean of each metric over the images (CompressAI's ``eval_model``); MS-SSIM over
        the images large enough for it."""
        return {column: float(self.rows[column].mean()) for column in MEAN_COLUMNS}

    @property
    def description(self) -> str:
        return "Inference (vinfo rANS)" if self.bitstreams else "Inference (entropy estimation)"


def compressai_results(evaluations: Sequence[FolderEvaluation], name: str) -> dict[str, Any]:
    """CompressAI's results JSON of several codecs (one RD point each, in order):
    ``{"name", "description", "results": {"bpp": […], "psnr-rgb": […], "ms-ssim-rgb": […]}}``.

    Raises:
        ValueError: no evaluation, or evaluations of different folders or rate kinds.
    """
    if not evaluations:
        raise ValueError("no evaluation to write")
    if len({(e.folder, e.bitstreams) for e in evaluations}) > 1:
        raise ValueError("the results of one curve come from one folder and one kind of rate")
    results: dict[str, list[float | None]] = {"bpp": [], "psnr-rgb": [], "ms-ssim-rgb": []}
    for evaluation in evaluations:
        means = evaluation.means()
        for key, values in results.items():
            values.append(None if math.isnan(means[key]) else means[key])
    return {"name": name, "description": evaluations[0].description, "results": results}


@torch.no_grad()
def evaluate_folder(
    model: nn.Module,
    dataset: ImageFolder,
    *,
    name: str = "model",
    bitstreams: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> FolderEvaluation:
    """Score a reconstruction codec (base or enhancement) image by image.

    Args:
        model: a vinfo codec whose task is reconstruction.
        dataset: the images, each at its own size.
        name: the codec's name in the results.
        bitstreams: code every image into real bitstreams for ``bpp`` (else the estimate).
        progress: called with ``(images done, images)`` after each image.

    Raises:
        ValueError: a codec of another task.
    """
    task = task_name(model)
    if task != "reconstruction":
        raise ValueError(f"{name}: a {task} codec; an image folder has reconstruction targets "
                         "only")
    model = model.eval()
    rows = []
    for index in range(len(dataset)):
        sample = dataset[index]
        x = sample.image.unsqueeze(0)  # (1, 3, H, W)
        height, width = sample.size
        out = model(x)
        base_bits, enhancement_bits = estimated_bits(model, out, height * width)
        estimate = float(base_bits[0] + enhancement_bits[0]) / (height * width)
        actual = stream_bits(model, x)[0] / (height * width) if bitstreams else estimate
        rows.append({"image": sample.meta["file_name"], "height": height, "width": width,
                     "bpp": actual, "bpp_estimated": estimate,
                     **compressai_metrics(x, out.task_output)})
        if progress is not None:
            progress(index + 1, len(dataset))
    skipped = tuple((str(path), reason) for path, reason in dataset.skipped)
    return FolderEvaluation(name, str(dataset.folder), pd.DataFrame(rows, columns=COLUMNS),
                            skipped, bitstreams)


__all__ = ["COLUMNS", "FolderEvaluation", "compressai_metrics", "compressai_results",
           "evaluate_folder"]
