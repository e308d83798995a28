"""Help texts shared by several commands (one definition, the same words everywhere)."""

from vinfo.data import PRESETS

SYNTHETIC_PRESET_HELP = f"Synthetic preset: {', '.join(PRESETS)}."
