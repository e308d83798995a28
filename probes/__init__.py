"""Probe families that estimate the predictive V-information of frozen representations.

One small module per concept: :mod:`probes.heads` (per-pixel likelihoods, target registry),
:mod:`probes.families` (graded-capacity family registry), :mod:`probes.estimator`
(:class:`VInfoProbe`, :func:`run_probes`), :mod:`probes.uncertainty` (paired bootstrap),
:mod:`probes.representations` (safetensors bundles of ``ŷ``) and :mod:`probes.pvi`
(pointwise maps). Definitions follow Xu et al., ICLR 2020; all entropies are in bits.
"""

from probes.estimator import (
    PerImageBits,
    ProbeData,
    ProbeScores,
    Splits,
    VInfoProbe,
    linear_gaussian_closed_form,
    run_probes,
    shuffle_representation,
    shuffled_control,
)
from probes.families import FAMILIES, ProbeFamily, count_parameters, get_family
from probes.heads import (
    TARGETS,
    CategoricalHead,
    ContinuousHead,
    DiscretizedHead,
    Head,
    Target,
    get_target,
)
from probes.pvi import PVIMaps, pvi_maps
from probes.representations import BundleError, RepresentationBundle, load_bundle, save_bundle
from probes.uncertainty import (
    Estimate,
    bootstrap_iv,
    bootstrap_paired_difference,
    bootstrap_ratio,
    capacity_check,
)

__all__ = [
    "FAMILIES",
    "TARGETS",
    "BundleError",
    "CategoricalHead",
    "ContinuousHead",
    "DiscretizedHead",
    "Estimate",
    "Head",
    "PVIMaps",
    "PerImageBits",
    "ProbeData",
    "ProbeFamily",
    "ProbeScores",
    "RepresentationBundle",
    "Splits",
    "Target",
    "VInfoProbe",
    "bootstrap_iv",
    "bootstrap_paired_difference",
    "bootstrap_ratio",
    "capacity_check",
    "count_parameters",
    "get_family",
    "get_target",
    "linear_gaussian_closed_form",
    "load_bundle",
    "pvi_maps",
    "run_probes",
    "save_bundle",
    "shuffle_representation",
    "shuffled_control",
]
