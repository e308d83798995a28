"""Real bitstreams for vinfo's codecs: headers, rANS entropy coding, serial decoding."""

from vinfo.coding.bitstream import (
    HEADER_BYTES,
    MAX_PIXELS,
    DecodedLatent,
    RateAudit,
    StreamError,
    compress,
    compress_enhancement,
    decompress,
    decompress_enhancement,
    decompress_many,
    rate_audit,
)
from vinfo.coding.tables import CoderTables, default_tables
from vinfo.coding.wavefront import CODING_ORDERS, entropy_pass

__all__ = [
    "CODING_ORDERS",
    "CoderTables",
    "default_tables",
    "entropy_pass",
    "HEADER_BYTES",
    "MAX_PIXELS",
    "DecodedLatent",
    "RateAudit",
    "StreamError",
    "compress",
    "compress_enhancement",
    "decompress",
    "decompress_enhancement",
    "decompress_many",
    "rate_audit",
]
