"""Each table of the watch report shows one step, named in its title."""

import numpy as np
from rich.console import Console

from gradwatch.probe.history import History
from gradwatch.report.watch_table import hook_tables, watch_tables


def _history():
    h = History(["a", "b"], ["grad_norm", "act_mean", "act_saturation"], kinds=["Linear", "Linear"])
    values = np.full((12, 3, 2), np.nan)
    values[:, 0] = np.arange(12)[:, None] + [0.5, 0.25]  # every step
    values[::5, 1] = [[1.5, 2.5], [3.5, 4.5], [6.5, 7.5]]  # sampled at 0, 5, 10
    values[5, 2] = [0.125, 0.375]  # only recorded at step 5
    h.append(np.arange(12), values)
    return h


def _text(tables):
    console = Console(record=True, width=120)
    for t in tables:
        console.print(t)
    return console.export_text()


def test_statistics_last_recorded_at_different_steps_get_their_own_tables():
    h = _history()
    tables = hook_tables(h)
    assert [str(t.title) for t in tables] == ["activations and backward gains (last sampled step 10; global)",
                                         "activations and backward gains (last sampled step 5; global)"]
    text = _text(tables)
    first, second = text.split("last sampled step 5")
    assert "6.5" in first and "7.5" in first and "3.5" not in first and "12%" not in first  # act_mean, step 10
    assert "12%" in second and "38%" in second and "3.5" not in second  # act_saturation: step 5 only


def test_gradient_table_names_its_step():
    tables = watch_tables(_history())
    assert len(tables) == 1 and str(tables[0].title) == "gradwatch: 2 layers, 12 recorded steps (last: 11)"
    assert "12" in _text(tables) and "11" in _text(tables)  # 11.5 and 11.25 at 2 significant digits


def test_a_window_row_is_labelled_as_such():
    h = History(["a"], ["grad_norm", "act_mean"], max_rows=10, recent_rows=3, head_rows=1)
    values = np.full((40, 2, 1), np.nan)
    values[:, 0, 0] = 1.0
    values[10, 1, 0] = 7.0  # sampled once, long ago: now inside a window
    h.append(np.arange(40), values)
    (table,) = hook_tables(h)
    assert "window mean" in str(table.title) and "steps " in str(table.title)
