"""The typer app behind the ``vinfo`` command (see ``cli.main``)."""

import warnings

# compressai (imported by the codecs) still uses torch.jit.script, which torch 2.14 flags on
# every start; the warning is about compressai's code, not the user's command.
warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)
