"""Procedural multi-task street scenes: the built-in default dataset.

Every sample carries all of the paper's targets at once (image, metric depth with validity,
semantic segmentation, instance boxes/labels/masks), so the whole pipeline runs without COCO or
Cityscapes. A scene is a pinhole-camera view of a flat ground plane (road and sidewalk) with a
skyline of building facades and a few objects (cars, persons, traffic signs) standing on the
ground; occlusion is resolved by depth (painter's algorithm, far to near).

The targets are learnable but not trivial:

* every region draws its colour from the *same* distribution, whatever its class, so colour says
  nothing about class or depth; classes differ by texture (stripes, checks, tiles, windows),
  shape and position;
* depth follows from geometry (the row of an object's ground contact, its apparent size, the
  ground plane's perspective) and from aerial perspective: a surface at depth ``Z`` fades
  toward a fixed haze colour with weight ``Z / (Z + haze_m)``, so its contrast and saturation
  shrink with distance and the sky is the haze colour (a cue a small receptive field sees; with
  geometry alone a tiny codec sat at the per-pixel prior for 600 steps, with haze it passed
  0.7x the prior's disparity RMSE within 200, issue #13). Colour still says nothing about
  class: the haze is the same for every class at the same depth;
* a tiny codec can learn it within a CPU budget: the horizon varies over 40 % of the height,
  so the per-pixel prior misses it and a model that finds it wins, and the 1–3 things per scene
  stand 4–15 m away, large enough for a latent of 16-pixel cells to see. (With the horizon in
  30–50 % of the height and 2–6 things at 3–30 m, a tiny codec trained for 480 steps stayed
  at the prior: disparity RMSE 0.92 vs 0.87 px.)

Depth is stored as stereo disparity in pixels by default (``depth="disparity"``,
``depth_unit="px"``), like :class:`vinfo.data.cityscapes.Cityscapes`' default and the target
of the paper's depth experiments (de Andrade & Bajić train on Cityscapes disparity): for a
camera of focal length ``f`` px and a virtual stereo baseline ``B`` m (Cityscapes' 0.209 m),
``d = B·f / Z``, so on the ground plane ``d = B·(v − v_h) / h_cam`` grows linearly with the
row below the horizon and far pixels weigh little. ``depth="metric"`` gives metres. As on
Cityscapes, whose disparity maps are in pixels of the 2048-px-wide camera whatever size the
images are used at (the authors train on images downscaled by 2 against full-resolution
disparity), ``f`` here is the focal length of a ``disparity_width``-px-wide camera with the same
field of view, so the depth term of the loss has the size it has in the paper's experiments
(about 30 px of prior RMSE, not 1) and β = 0.1 weighs against it as it does there.

Generation is bit-for-bit reproducible: sample ``index`` of a dataset with seed ``seed`` is drawn
from its own generator ``numpy.random.default_rng([seed, index])``, so random access and any
worker split give the same images, and only IEEE-exact arithmetic (no transcendental functions)
is used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import torch
from torch.utils.data import Dataset

from vinfo.data.sample import IGNORE_INDEX, TASKS, Sample


@dataclass(frozen=True)
class SceneClass:
    """One synthetic class and where the exporters map it.

    Attributes:
        name: class name (Cityscapes spelling).
        is_thing: countable object with an instance (box, mask) rather than "stuff".
        cityscapes_label_id: the real Cityscapes ``labelId`` written to ``*_gtFine_labelIds.png``.
        coco_category_id: the real COCO 2017 category id (things only).
        coco_name: the COCO category name (things only).
        coco_supercategory: the COCO supercategory (things only).
    """

    name: str
    is_thing: bool
    cityscapes_label_id: int
    coco_category_id: int | None = None
    coco_name: str | None = None
    coco_supercategory: str | None = None


SYNTHETIC_CLASSES: tuple[SceneClass, ...] = (
    SceneClass("road", False, 7),
    SceneClass("sidewalk", False, 8),
    SceneClass("building", False, 11),
    SceneClass("sky", False, 23),
    SceneClass("car", True, 26, 3, "car", "vehicle"),
    SceneClass("person", True, 24, 1, "person", "person"),
    SceneClass("traffic sign", True, 20, 13, "stop sign", "outdoor"),
)
"""Class ``i`` of the synthetic segmentation maps and box labels is ``SYNTHETIC_CLASSES[i]``."""

ROAD, SIDEWALK, BUILDING, SKY, CAR, PERSON, SIGN = range(len(SYNTHETIC_CLASSES))
THING_CLASSES: tuple[int, ...] = (CAR, PERSON, SIGN)


HAZE_COLOUR: tuple[float, float, float] = (0.75, 0.8, 0.9)
"""The colour distant surfaces fade to (:attr:`SyntheticConfig.haze_m`), and of the sky."""

DEPTH_UNITS: dict[str, str] = {"disparity": "px", "metric": "m"}
"""``SyntheticConfig.depth`` → :attr:`Sample.depth_unit`."""


@dataclass(frozen=True)
class SyntheticConfig:
    """Size and look of a synthetic dataset. Presets: :data:`PRESETS`.

    Attributes:
        height: image height in pixels.
        width: image width in pixels.
        num_images: dataset length.
        seed: dataset seed; sample ``i`` uses ``default_rng([seed, i])``.
        min_objects: fewest objects drawn per scene (before occlusion culling).
        max_objects: most objects drawn per scene.
        noise_std: std of additive Gaussian pixel noise, image units (``[0, 1]`` range).
        blur: apply a 3×3 box blur before quantisation.
        camera_height_m: camera height above the ground plane, metres.
        focal_px: focal length in pixels; ``None`` means ``width`` (a 53° horizontal view).
        max_depth_m: ground farther than this is marked invalid (like far Cityscapes pixels).
        min_object_area_px: visible instances smaller than this get no box; their pixels are
            set to the ignore index in the segmentation.
        depth: ``"disparity"`` (pixels, ``B·f / Z``) or ``"metric"`` (metres), the unit of
            :attr:`Sample.depth`.
        stereo_baseline_m: the virtual stereo baseline ``B`` of the disparity, metres
            (Cityscapes' ``extrinsic.baseline``).
        disparity_width: the disparity is in pixels of a camera this wide with the image's
            field of view (Cityscapes' full resolution: 2048); ``None``: of the image itself.
        horizon: range of the horizon row, as fractions of the height (uniform).
        object_depth_m: range of the things' depth, metres (inverse depth uniform: more near).
        building_depth_m: range of the facades' depth, metres (uniform).
        haze_m: aerial perspective: a surface at depth ``Z`` m is blended toward
            :data:`HAZE_COLOUR` with weight ``Z / (Z + haze_m)`` (the sky fully); ``None``
            means no haze (the look before issue #13).
    """

    height: int = 64
    width: int = 64
    num_images: int = 256
    seed: int = 0
    min_objects: int = 1
    max_objects: int = 3
    noise_std: float = 0.02
    blur: bool = False
    camera_height_m: float = 1.5
    focal_px: float | None = None
    max_depth_m: float = 80.0
    min_object_area_px: int = 4
    depth: str = "disparity"
    stereo_baseline_m: float = 0.209313
    disparity_width: int | None = 2048
    horizon: tuple[float, float] = (0.2, 0.6)
    object_depth_m: tuple[float, float] = (4.0, 15.0)
    building_depth_m: tuple[float, float] = (25.0, 60.0)
    haze_m: float | None = 20.0

    def __post_init__(self) -> None:
        for name in ("horizon", "object_depth_m", "building_depth_m"):  # JSON gives lists
            value = tuple(float(v) for v in getattr(self, name))
            if len(value) != 2 or not 0 < value[0] <= value[1]:
                raise ValueError(f"{name} must be a range (low, high) with 0 < low <= high, "
                                 f"got {getattr(self, name)}")
            object.__setattr__(self, name, value)
        if self.horizon[1] >= 1:
            raise ValueError(f"horizon must lie inside the image (< 1), got {self.horizon}")
        if self.depth not in DEPTH_UNITS:
            raise ValueError(f"depth must be one of {', '.join(DEPTH_UNITS)}, got {self.depth!r}")
        if self.haze_m is not None and not self.haze_m > 0:
            raise ValueError(f"haze_m must be positive or None, got {self.haze_m}")
        if self.disparity_width is not None and self.disparity_width < 1:
            raise ValueError(f"disparity_width must be positive or None, got "
                             f"{self.disparity_width}")
        if not self.stereo_baseline_m > 0:
            raise ValueError(f"stereo_baseline_m must be positive, got {self.stereo_baseline_m}")
        if self.height < 16 or self.width < 16:
            raise ValueError(f"image must be at least 16x16, got {self.height}x{self.width}")
        if self.num_images < 0:
            raise ValueError(f"num_images must be >= 0, got {self.num_images}")
        if not 0 <= self.min_objects <= self.max_objects:
            raise ValueError(f"need 0 <= min_objects <= max_objects, got "
                             f"{self.min_objects}, {self.max_objects}")

    @property
    def focal(self) -> float:
        """Focal length in pixels (``fx = fy``)."""
        return float(self.width if self.focal_px is None else self.focal_px)

    @property
    def disparity_focal(self) -> float:
        """Focal length in pixels of the disparity's camera (``d = B · disparity_focal / Z``)."""
        if self.disparity_width is None:
            return self.focal
        return self.focal * self.disparity_width / self.width

    @classmethod
    def preset(cls, name: str, **overrides: object) -> SyntheticConfig:
        """A preset from :data:`PRESETS`, with some fields replaced."""
        if name not in PRESETS:
            raise ValueError(f"unknown synthetic preset {name!r}; valid: {', '.join(PRESETS)}")
        return replace(PRESETS[name], **overrides)


PRESETS: dict[str, SyntheticConfig] = {
    "micro": SyntheticConfig(height=32, width=32, num_images=64),
    "tiny": SyntheticConfig(height=64, width=64, num_images=256),
    "demo": SyntheticConfig(height=64, width=64, num_images=1024),
    "small": SyntheticConfig(height=128, width=128, num_images=4096),
}
"""``tiny``: tests; ``demo``: ``reproduce --preset tiny`` (the tiny scenes, 1024 of them: with
192 training images the codecs overfit, disparity RMSE 0.65x the prior against 0.45x with 768);
``small``: quick experiments."""


def synthetic_preset_name(config: SyntheticConfig | str) -> str | None:
    """The :data:`PRESETS` name of ``config`` (``None``: a custom one); a name is returned as
    it is."""
    if isinstance(config, str):
        return config
    return next((name for name, preset in PRESETS.items() if preset == config), None)

# Texture canvases are this much larger than the image so a per-image phase is a cheap slice.
_PHASE = 12


@lru_cache(maxsize=8)
def _textures(height: int, width: int) -> np.ndarray:
    """Multiplicative texture per class, ``(C, H + _PHASE, W + _PHASE)`` float64.

    Textures are in image coordinates and differ by class, while colours do not: the texture
    is what tells a car from a person of the same colour.
    """
    yy, xx = np.mgrid[0 : height + _PHASE, 0 : width + _PHASE]
    t = np.ones((len(SYNTHETIC_CLASSES), *yy.shape))
    t[ROAD] = 1.0  # plus per-pixel grain, drawn per image
    t[SIDEWALK] = np.where((xx % 4 == 0) | (yy % 4 == 0), 0.75, 1.05)  # tiles
    t[BUILDING] = np.where((xx % 4 >= 2) & (yy % 5 >= 3), 1.35, 0.85)  # windows
    t[SKY] = 1.1 - 0.3 * yy / (height + _PHASE)  # smooth vertical gradient
    t[CAR] = np.where(yy % 3 == 0, 0.7, 1.1)  # horizontal stripes
    t[PERSON] = np.where((xx // 2 + yy // 2) % 2 == 0, 0.8, 1.15)  # checks
    t[SIGN] = np.where(xx % 3 == 0, 0.7, 1.1)  # vertical stripes
    return t


@lru_cache(maxsize=8)
def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(rows (H,), cols (W,))``."""
    return np.arange(height) + 0.5, np.arange(width) + 0.5


def _shape_mask(cls: int, h: int, w: int, variant: float) -> np.ndarray:
    """Silhouette of a thing inside its ``(h, w)`` bounding box, bool."""
    v = (np.arange(h)[:, None] + 0.5) / h  # 0 top → 1 bottom
    u = (np.arange(w)[None, :] + 0.5) / w  # 0 left → 1 right
    if cls == CAR:  # body (lower 60 %) and a narrower cabin: two rectangles
        inset = 0.15 + 0.15 * variant
        return (v >= 0.4) | ((u >= inset) & (u <= 1 - inset) & (v >= 0.05))
    if cls == PERSON:  # ellipse
        return (2 * u - 1) ** 2 + (2 * v - 1) ** 2 <= 1.0
    # traffic sign: upward triangle (variant < 0.5) or diamond, a polygon
    if variant < 0.5:
        return np.abs(2 * u - 1) <= v
    return np.abs(2 * u - 1) + np.abs(2 * v - 1) <= 1.0


def generate_scene(config: SyntheticConfig, index: int) -> Sample:
    """Draw sample ``index`` of the dataset described by ``config``.

    Args:
        config: dataset configuration (size, seed, look).
        index: sample index; any non-negative integer (``num_images`` is not enforced here).

    Returns:
        A :class:`Sample` with ``image (3, H, W)`` quantised to 8-bit levels (so PNG export is
        lossless), ``depth (1, H, W)`` as disparity in pixels or in metres
        (``config.depth``) with ``depth_valid`` (sky and ground beyond
        ``max_depth_m`` invalid), ``segmentation (H, W)`` in :data:`SYNTHETIC_CLASSES` ids,
        ``boxes (N, 4)``, ``labels (N,)`` and ``masks (N, H, W)`` of the visible instances.
    """
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    rng = np.random.default_rng([config.seed, index])
    H, W, f, hc = config.height, config.width, config.focal, config.camera_height_m
    rows, cols = _grid(H, W)
    cx = W / 2

    # --- ground plane: rows below the horizon see the ground at Z = f·h_cam / (v − v_h)
    horizon = H * rng.uniform(*config.horizon)
    dv = rows - horizon  # (H,)
    ground_row = dv > 0
    z_row = np.where(ground_row, f * hc / np.where(ground_row, dv, 1.0), np.inf)  # (H,)
    label = np.full((H, W), SKY, dtype=np.int64)
    depth = np.broadcast_to(z_row[:, None], (H, W)).copy()  # sky: inf, masked below
    road_c, road_hw = rng.uniform(-2.0, 2.0), rng.uniform(3.0, 6.0)
    lateral = (cols[None, :] - cx) * np.where(ground_row, z_row, 0.0)[:, None] / f  # X, metres
    on_road = np.abs(lateral - road_c) < road_hw
    label[ground_row] = np.where(on_road[ground_row], ROAD, SIDEWALK)

    # --- skyline: blocks of facades standing on the ground at depth z_b
    n_blocks = int(rng.integers(2, 6))
    edges = np.sort(rng.integers(0, W + 1, size=n_blocks - 1))
    widths = np.diff(np.concatenate([[0], edges, [W]]))
    z_b = rng.uniform(*config.building_depth_m, size=n_blocks)
    h_b = rng.uniform(6.0, 30.0, size=n_blocks)
    present = rng.uniform(size=n_blocks) < 0.8
    z_col = np.repeat(np.where(present, z_b, np.inf), widths)  # (W,)
    bottom = horizon + f * hc / z_col
    top = bottom - f * np.repeat(h_b, widths) / z_col
    facade = (rows[:, None] >= top[None, :]) & (rows[:, None] < bottom[None, :])
    label[facade] = BUILDING
    depth = np.where(facade, z_col[None, :], depth)

    # --- things, far to near so nearer ones occlude
    n_obj = int(rng.integers(config.min_objects, config.max_objects + 1))
    cls = rng.choice(np.array(THING_CLASSES), size=n_obj, p=[0.45, 0.35, 0.2])
    near, far = config.object_depth_m
    z_o = 1.0 / rng.uniform(1 / far, 1 / near, size=n_obj)  # inverse depth uniform: more near
    u_o = rng.uniform(0.0, W, size=n_obj)  # image column of the object's centre
    variant = rng.uniform(size=n_obj)
    size_lo = np.array([[1.6, 1.3], [0.5, 1.5], [0.6, 0.6]])  # (w, h) metres: car, person, sign
    size_hi = np.array([[4.2, 1.8], [0.8, 1.9], [0.9, 0.9]])
    k = cls - CAR
    wh = size_lo[k] + (size_hi[k] - size_lo[k]) * rng.uniform(size=(n_obj, 2))
    elevation = np.where(cls == SIGN, rng.uniform(1.5, 2.5, size=n_obj), 0.0)
    order = np.argsort(-z_o, kind="stable")
    instance = np.zeros((H, W), dtype=np.int64)  # 0 = none, j + 1 = object j
    for j in order:
        u_c = u_o[j]
        v_b = horizon + f * (hc - elevation[j]) / z_o[j]
        x0, x1 = round(u_c - f * wh[j, 0] / (2 * z_o[j])), round(u_c + f * wh[j, 0] / (2 * z_o[j]))
        y0, y1 = round(v_b - f * wh[j, 1] / z_o[j]), round(v_b)
        if x1 - x0 < 1 or y1 - y0 < 1:
            continue
        shape = _shape_mask(int(cls[j]), y1 - y0, x1 - x0, float(variant[j]))
        # clip the box to the image, and the silhouette with it
        cy0, cy1, cx0, cx1 = max(y0, 0), min(y1, H), max(x0, 0), min(x1, W)
        if cy1 <= cy0 or cx1 <= cx0:
            continue
        m = shape[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
        label[cy0:cy1, cx0:cx1][m] = cls[j]
        depth[cy0:cy1, cx0:cx1][m] = z_o[j]
        instance[cy0:cy1, cx0:cx1][m] = j + 1

    # --- appearance: one colour per region from the same distribution for every class
    region = np.where(instance > 0, 3 + instance, label.clip(max=3))  # stuff 0..3, things 4..
    colours = rng.uniform(0.15, 0.9, size=(4 + n_obj, 3))
    block_gain = np.repeat(rng.uniform(0.8, 1.2, size=n_blocks), widths)  # (W,)
    oy, ox = rng.integers(0, _PHASE, size=2)
    texture = _textures(H, W)[label, rows.astype(np.int64)[:, None] + oy,
                              cols.astype(np.int64)[None, :] + ox]  # (H, W)
    texture = texture * np.where(label == BUILDING, block_gain[None, :], 1.0)
    grain = rng.standard_normal((H, W))
    texture = texture + np.where(label == ROAD, 0.08 * grain, 0.0)
    brightness = rng.uniform(0.8, 1.1)
    image = colours.T[:, region] * (texture * brightness)[None]  # (3, H, W)
    if config.haze_m is not None:  # aerial perspective; the sky (Z = inf) is all haze
        finite = np.isfinite(depth)
        fade = np.where(finite, depth / (np.where(finite, depth, 0.0) + config.haze_m), 1.0)
        image = (1.0 - fade) * image + fade * np.array(HAZE_COLOUR)[:, None, None]
    image = image + config.noise_std * rng.standard_normal((3, H, W))
    if config.blur:
        p = np.pad(image, ((0, 0), (1, 1), (1, 1)), mode="edge")
        image = sum(p[:, i : i + H, j : j + W] for i in range(3) for j in range(3)) / 9.0
    image = np.round(np.clip(image, 0.0, 1.0) * 255.0) / 255.0

    # --- targets
    valid = np.isfinite(depth) & (depth <= config.max_depth_m)
    depth = np.where(valid, depth, 0.0)
    if config.depth == "disparity":
        depth = np.where(valid, config.stereo_baseline_m * config.disparity_focal
                         / np.where(valid, depth, 1.0), 0.0)
    area = np.bincount(instance.ravel(), minlength=n_obj + 1)  # (n_obj + 1,), 0 = background
    small = (area > 0) & (area < config.min_object_area_px)
    small[0] = False
    label[small[instance]] = IGNORE_INDEX
    ids = np.flatnonzero((area > 0) & (area >= config.min_object_area_px))
    ids = ids[ids > 0]  # visible objects, in drawing-list order
    masks = instance[None] == ids[:, None, None]  # (N, H, W)
    rows_any, cols_any = masks.any(axis=2), masks.any(axis=1)  # (N, H), (N, W)
    boxes = np.stack([
        cols_any.argmax(1), rows_any.argmax(1),
        W - cols_any[:, ::-1].argmax(1), H - rows_any[:, ::-1].argmax(1),
    ], axis=1)

    return Sample(
        image=torch.from_numpy(image.astype(np.float32)),
        depth=torch.from_numpy(depth.astype(np.float32))[None],
        depth_valid=torch.from_numpy(valid)[None],
        depth_unit=DEPTH_UNITS[config.depth],
        segmentation=torch.from_numpy(label),
        boxes=torch.from_numpy(boxes.astype(np.float32)).reshape(-1, 4),
        labels=torch.from_numpy(cls[ids - 1].astype(np.int64)),
        masks=torch.from_numpy(masks),
        meta={"index": index, "seed": config.seed, "focal_px": f},
    )


class SyntheticScenes(Dataset):
    """The synthetic dataset as a map-style ``torch`` dataset, generated on the fly.

    Args:
        config: a :class:`SyntheticConfig` or a preset name from :data:`PRESETS`.
        transform: optional ``Sample → Sample`` callable applied after generation (e.g.
            :class:`vinfo.data.transforms.RandomHorizontalFlip`).
        cache: keep every generated scene in memory, so each is drawn once per process and
            every later epoch only pays for ``transform`` (a 64×64 scene is about 60 kB).

    Example:
        >>> ds = SyntheticScenes("tiny")
        >>> ds[0].image.shape
        torch.Size([3, 64, 64])
    """

    tasks: tuple[str, ...] = TASKS
    classes: tuple[SceneClass, ...] = SYNTHETIC_CLASSES

    def __init__(
        self,
        config: SyntheticConfig | str = "tiny",
        transform: Callable[[Sample], Sample] | None = None,
        cache: bool = True,
    ) -> None:
        self.config = SyntheticConfig.preset(config) if isinstance(config, str) else config
        self.transform = transform
        self._cache: dict[int, Sample] | None = {} if cache else None

    def __len__(self) -> int:
        return self.config.num_images

    def __getitem__(self, index: int) -> Sample:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        index %= len(self)
        sample = None if self._cache is None else self._cache.get(index)
        if sample is None:
            sample = generate_scene(self.config, index)
            if self._cache is not None:
                self._cache[index] = sample  # transforms return new samples, never mutate
        return sample if self.transform is None else self.transform(sample)

    def __repr__(self) -> str:
        return f"SyntheticScenes({self.config})"
