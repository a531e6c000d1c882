"""The ``gradwatch`` command line (typer + rich).

User mistakes never end in a traceback: a bad flag value prints one line and exits 2, missing or corrupt
data prints one line and exits 1.
"""

from __future__ import annotations

import sys
from typing import Any

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
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """gradwatch: why deep networks are hard to train, measured."""


# typer's parser errors (typer ships its own click, older versions use click's): found from the one it exports
_UsageError: Any = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
_ClickException: Any = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gradwatch`` script; returns (and, from the shell, exits with) the exit code."""
    import sqlite3

    try:
        rv = app(args=argv, prog_name="gradwatch", standalone_mode=False)
        rc = rv if isinstance(rv, int) and not isinstance(rv, bool) else 0  # typer.Exit(n) returns n here
    except SystemExit as exc:  # --version, and commands that exit themselves
        rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except _UsageError as exc:  # a flag or argument the parser refuses: one line, not a usage box
        command = exc.ctx.command_path if exc.ctx is not None else "gradwatch"
        message = " ".join(exc.format_message().split())
        if message:  # empty: a group called without a command, its help already printed
            typer.echo(f"error: {clean(message)} (see `{command} --help`)", err=True)
        rc = exc.exit_code
    except typer.Abort:  # Ctrl-C at a prompt
        typer.echo("interrupted", err=True)
        rc = 130
    except _ClickException as exc:
        typer.echo(f"error: {clean(' '.join(exc.format_message().split()))}", err=True)
        rc = exc.exit_code
    except sqlite3.DatabaseError as exc:  # a run store that fails under a read the checks could not foresee
        from gradwatch.store.sqlite import store_problem

        typer.echo(f"error: --store: {clean(store_problem(exc))}", err=True)
        rc = 1
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
