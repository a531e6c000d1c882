"""The ``gradwatch`` command line (typer + rich).

User mistakes never end in a traceback: a bad flag value prints one line and exits 2, missing or corrupt
data prints one line and exits 1.
"""

from __future__ import annotations

import sys

import typer

from gradwatch._version import __version__
from gradwatch.cli.lab import lab_app
from gradwatch.cli.runs import register_runs
from gradwatch.cli.serve import register_serve
from gradwatch.cli.sweep import register_sweep
from gradwatch.cli.theory import theory_app
from gradwatch.cli.train import register_train
from gradwatch.errors import ConfigError, DataError
from gradwatch.report.safe_text import clean

app = typer.Typer(
    name="gradwatch",
    help="Watch, diagnose, reproduce and predict vanishing and exploding gradients in deep networks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(lab_app, name="lab")
app.add_typer(theory_app, name="theory")
register_train(app)
register_runs(app)
register_serve(app)
register_sweep(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gradwatch {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """gradwatch: why deep networks are hard to train, measured."""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gradwatch`` script; returns (and, from the shell, exits with) the exit code."""
    try:
        app(args=argv, prog_name="gradwatch")
        rc = 0
    except SystemExit as exc:  # typer's own exits: --help, --version, usage errors (code 2)
        rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except (ConfigError, DataError) as exc:
        typer.echo(f"error: {clean(exc.cli_message())}", err=True)
        rc = exc.exit_code
    except MemoryError:
        typer.echo("error: out of memory; choose smaller sizes (--width, --depth, --batch-size)", err=True)
        rc = 1
    except OSError as exc:  # a file-system failure the checks could not foresee (disk full, a file removed)
        where = f" ({clean(exc.filename)})" if exc.filename else ""
        typer.echo(f"error: {clean(exc.strerror or exc)}{where}", err=True)
        rc = 1
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        rc = 130
    if argv is None:
        sys.exit(rc)
    return rc
