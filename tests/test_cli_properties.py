"""Property-based: no value of any option of ``train``, the theory commands or a lab experiment, and no value of
any ``lab.Config`` field, ends in a traceback. Each either works or is refused with a one-line error (exit 2 for
a bad option, 1 for a file-system problem). Work after validation is stubbed out, so each example takes
milliseconds; a few examples run for real elsewhere (test_bad_inputs.py)."""

import math

import pytest

hypothesis = pytest.importorskip("hypothesis", reason="property tests need hypothesis (pip install 'gradwatch[test]')")
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st
from typer.testing import CliRunner  # noqa: E402

from gradwatch import lab  # noqa: E402
from gradwatch.cli import app  # noqa: E402
from gradwatch.errors import ConfigError, DataError  # noqa: E402
from gradwatch.lab import experiments  # noqa: E402

SETTINGS = settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))

numbers = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 0.5, 1e308, 2**63, 2**64]),
)
texts = st.one_of(st.text(max_size=12), st.sampled_from(["[/]", "[bold]x", "\x1b[31mred", "a,b", "5", "1,2",
                                                         "", "cuda", "mps", "cpu:0", "../x", "nan"]))
option_values = st.one_of(numbers.map(str), texts)


def _invoke(args):
    result = CliRunner().invoke(app, args, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        if isinstance(result.exception, (ConfigError, DataError)):
            return result  # main() prints these as one line; invoke() bypasses main
        raise result.exception
    assert result.exit_code in (0, 1, 2), result.output
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def no_training(monkeypatch):
    """Validate and load the data, but do not train: the property is about inputs."""
    import gradwatch.lab as lab_pkg
    from gradwatch.lab import prepare as prepare_mod

    def fake_train(cfg, **kw):
        prepare_mod.prepare(cfg) if cfg.dataset == "digits" else None
        raise DataError("stub: training skipped in the property test")

    monkeypatch.setattr(lab_pkg, "train", fake_train)


TRAIN_FIELDS = sorted(lab.Config.model_fields)


@SETTINGS
@given(st.dictionaries(st.sampled_from(TRAIN_FIELDS), option_values, max_size=3))
def test_train_options_never_give_a_traceback(no_training, tmp_path_factory, options):
    store = tmp_path_factory.mktemp("s") / "runs.sqlite"
    args = ["train", "--store", str(store)]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if lab.Config.model_fields[name].annotation is bool:
            args.append(flag if value.strip() else "--no-" + name.replace("_", "-"))
        else:
            args += [flag, value]
    _invoke(args)


field_values = st.one_of(numbers, texts, st.booleans(), st.none(), st.lists(st.integers(-3, 2**40), max_size=3))


@SETTINGS
@given(st.dictionaries(st.sampled_from(TRAIN_FIELDS), field_values, max_size=4))
def test_config_fields_raise_only_config_errors(fields):
    try:
        cfg = lab.Config(**fields)
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc).split("=")[0] in fields
        return
    for name in ("lr", "init_std", "bias_init", "l2", "l1", "val_fraction"):  # every accepted float is finite
        assert math.isfinite(getattr(cfg, name))


THEORY = {
    "variance": ["--sizes", "--activation", "--init", "--init-std", "--input-var"],
    "meanfield": ["--activation", "--sigma-w2", "--sigma-b2", "--depth", "--q0", "--grid"],
    "chain": ["--weights", "--biases", "--x", "--activation", "--loss-grad", "--target"],
    "nielsen": ["--w"],
    "compare": ["--width", "--depth", "--activation", "--init", "--nets", "--examples", "--seed"],
}


@SETTINGS
@example(("compare", {"--seed": str(2**70)}))   # inputs that once ended in a traceback
@example(("meanfield", {"--activation": "relu", "--depth": str(10**6)}))
@given(st.sampled_from(sorted(THEORY)).flatmap(
    lambda cmd: st.tuples(st.just(cmd), st.dictionaries(st.sampled_from(THEORY[cmd]), option_values, max_size=2))))
def test_theory_options_never_give_a_traceback(monkeypatch, command_and_options):
    command, options = command_and_options
    args = ["theory", command] + [x for kv in options.items() for x in kv]
    if command == "chain" and "--weights" not in options:
        args += ["--weights", "1,2"]
    if command == "compare":  # keep the measured nets small: only validation is under test
        args += ["--nets", "1", "--examples", "1"] if not {"--nets", "--examples"} & set(options) else []
        if not {"--width", "--depth"} & set(options):
            args += ["--width", "4", "--depth", "2"]
        else:
            monkeypatch.setattr("gradwatch.nn.memory.available_bytes", lambda: 2**26)
    if command == "meanfield" and "--grid" not in options:
        args += ["--grid", "3"]
    _invoke(args)


EXPERIMENT_FIELDS = {n: sorted(set(experiments.get(n).config.model_fields) - {"quick"}) for n in experiments.NAMES}


@SETTINGS
@given(st.sampled_from(experiments.NAMES).flatmap(lambda name: st.tuples(
    st.just(name), st.dictionaries(st.sampled_from(EXPERIMENT_FIELDS[name]), option_values, max_size=2))))
def test_experiment_options_never_give_a_traceback(monkeypatch, name_and_options):
    name, options = name_and_options
    from gradwatch.lab.experiments.base import Experiment

    def validate_only(self, progress=None, **opts):
        self.config(**opts)
        raise DataError("stub: experiment skipped in the property test")

    monkeypatch.setattr(Experiment, "__call__", validate_only)
    args = ["lab", name, "--quick"]
    for field, value in options.items():
        flag = "--" + field.replace("_", "-")
        annotation = experiments.get(name).config.model_fields[field].annotation
        args += [flag if value.strip() else flag.replace("--", "--no-", 1)] if annotation is bool else [flag, value]
    _invoke(args)


# ---- sweep specs and stored-run commands, through main() (one line on stderr, whatever the input) -------------

def _main_one_line(capsys, args):
    from gradwatch.cli import main

    rc = main(args)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert rc in (0, 1, 2), (rc, err)
    if rc:
        assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    return rc


knob_names = st.sampled_from(TRAIN_FIELDS + ["nope", "", "depth ", "DEPTH", "sizes", "tbptt"])
knob_values = st.one_of(option_values, st.builds(lambda f, a, b, c: f"{f}:{a}:{b}:{c}",
                                                 st.sampled_from(["log", "lin", "range", "ragne"]),
                                                 numbers.map(str), numbers.map(str), numbers.map(str)))


@SETTINGS
@given(st.lists(st.tuples(knob_names, knob_values), min_size=1, max_size=3),
       st.one_of(st.none(), st.integers(-3, 20_000)))
def test_sweep_specs_never_give_a_traceback_nor_start_an_unconfirmed_huge_sweep(monkeypatch, capsys,
                                                                                tmp_path_factory, knobs, seeds):
    import gradwatch.sweep.runner as runner
    from gradwatch.sweep.spec import MAX_RUNS

    started = []

    def stub(spec, *a, **k):
        assert spec.size <= MAX_RUNS  # never more without --yes
        started.append(spec.size)
        raise DataError("stub: sweep skipped in the property test")

    monkeypatch.setattr(runner, "run_sweep", stub)
    args = ["sweep", "--store", str(tmp_path_factory.mktemp("s") / "runs.sqlite"), "--workers", "1"]
    for name, value in knobs:
        args += ["--param", f"{name}={value}"]
    if seeds is not None:
        args += ["--seeds", str(seeds)]
    _main_one_line(capsys, args)


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "runs.sqlite"
    lab.train(lab.Config(depth=1, width=4, epochs=1, steps=2), store=str(path))
    return path


@SETTINGS
@given(st.sampled_from(["show", "report", "compare"]), st.lists(texts, min_size=1, max_size=2),
       st.sampled_from([[], ["--json"], ["--stat", "grad_norm"], ["--stat", "[/]"], ["--plot", "x.txt"]]))
def test_stored_run_commands_never_give_a_traceback(capsys, stored, tmp_path_factory, command, ids, extra):
    out = tmp_path_factory.mktemp("o")
    args = [command, *ids[: 2 if command == "compare" else 1], "--store", str(stored)]
    if command == "report":
        args += ["--html", str(out / "r.html")]
    elif command == "compare":
        args += [e for e in extra if e != "--json"]
    else:
        args += [e for e in extra if e == "--json"]
    _main_one_line(capsys, args)
