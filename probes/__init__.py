"""Probe families that estimate the predictive V-information of frozen representations.

One small module per concept: :mod:`probes.heads` (per-pixel likelihoods, target registry),
:mod:`probes.families` (graded-capacity family registry), :mod:`probes.null` (the null
``f[∅]``, fitted to convergence), :mod:`probes.probe_data`
(splits and per-image bits), :mod:`probes.estimator` (:class:`VInfoProbe`), its closed form
:mod:`probes.closed_form`, :mod:`probes.controls` (shuffled representations, control task),
:mod:`probes.study` (the study cell by cell, :func:`run_probes`), :mod:`probes.uncertainty`
(paired bootstrap),
:mod:`probes.paired` (``ΔI_V`` between representations with paired CIs),
:mod:`probes.bundles` (the safetensors bundle format of ``ŷ``),
:mod:`probes.representations` (bundles computed from checkpoints and cached),
:mod:`probes.sources` (data sources, targets, shared splits), :mod:`probes.pipeline`
(files → table, what ``vinfo probe`` runs), :mod:`probes.mdl` (online code length, the
second estimator) and :mod:`probes.pvi` (pointwise maps).
:mod:`probes.report` (figures, PVI files) is not re-exported: import it where figures are
written. Definitions follow Xu et al., ICLR 2020; all entropies are in
bits.
"""

from probes.bundles import BundleError, RepresentationBundle, load_bundle, save_bundle
from probes.closed_form import linear_gaussian_closed_form
from probes.controls import control_task, shuffle_representation, shuffled_control
from probes.estimator import ProbeScores, VInfoProbe
from probes.families import FAMILIES, ProbeFamily, count_parameters, get_family
from probes.heads import (
    FIELD_HEADS,
    TARGETS,
    CategoricalHead,
    ContinuousHead,
    DiscretizedHead,
    Head,
    Target,
    get_target,
)
from probes.mdl import BLOCK_FRACTIONS, OnlineCode, mdl_probes, online_code
from probes.paired import PAIRED_COLUMNS, load_bits, paired_differences, save_bits
from probes.pipeline import DEFAULT_SEEDS, ESTIMATORS, ProbeRun, probe_files
from probes.probe_data import PerImageBits, ProbeData, ProbeSplits
from probes.pvi import PVIMaps, pvi_maps
from probes.representations import (
    Representation,
    checkpoint_sha256,
    default_cache_dir,
    encode_dataset,
    load_representation,
)
from probes.sources import (
    DataSource,
    ProbeInputs,
    build_probe_inputs,
    read_targets,
    resolve_source,
    split_positions,
)
from probes.study import BitsKey, BitsRecord, FitEvent, run_probes
from probes.uncertainty import (
    EntropyEstimates,
    Estimate,
    bootstrap_entropies,
    bootstrap_iv,
    bootstrap_paired_difference,
    bootstrap_ratio,
    capacity_check,
)

__all__ = [
    "BLOCK_FRACTIONS",
    "FAMILIES",
    "PAIRED_COLUMNS",
    "FIELD_HEADS",
    "TARGETS",
    "BitsKey",
    "BitsRecord",
    "BundleError",
    "CategoricalHead",
    "ContinuousHead",
    "DataSource",
    "DiscretizedHead",
    "DEFAULT_SEEDS",
    "ESTIMATORS",
    "EntropyEstimates",
    "Estimate",
    "FitEvent",
    "Head",
    "OnlineCode",
    "PVIMaps",
    "PerImageBits",
    "ProbeData",
    "ProbeFamily",
    "ProbeInputs",
    "ProbeRun",
    "ProbeScores",
    "Representation",
    "RepresentationBundle",
    "ProbeSplits",
    "Target",
    "VInfoProbe",
    "bootstrap_entropies",
    "bootstrap_iv",
    "bootstrap_paired_difference",
    "bootstrap_ratio",
    "build_probe_inputs",
    "capacity_check",
    "checkpoint_sha256",
    "control_task",
    "count_parameters",
    "default_cache_dir",
    "encode_dataset",
    "get_family",
    "get_target",
    "linear_gaussian_closed_form",
    "load_bits",
    "load_bundle",
    "load_representation",
    "mdl_probes",
    "online_code",
    "paired_differences",
    "probe_files",
    "pvi_maps",
    "read_targets",
    "resolve_source",
    "run_probes",
    "save_bits",
    "save_bundle",
    "shuffle_representation",
    "shuffled_control",
    "split_positions",
]
