"""The typer app behind the ``vinfo`` command (see ``cli.main``)."""
