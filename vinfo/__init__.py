"""vinfo core: metrics, data, codecs, training and I/O for task-compatible representations.

The heavier subpackages are imported on use (``import vinfo.metrics``), so ``import vinfo``
stays cheap and never pulls in ``vinfo.experiments`` or the ``probes`` package.
"""

__version__ = "0.1.0"
