"""The preprocessing experiment: the claim on the quick numbers, and the curves against the stored runs."""

import numpy as np

from gradwatch.lab.experiments import get


def test_quick_run_standardised_and_whitened_beat_raw_every_epoch(tmp_path):
    store = tmp_path / "runs.sqlite"
    res = get("preprocessing")(quick=True, store=str(store))
    n = res.numbers
    loss = {k: np.array(v) for k, v in n["train_loss"].items()}  # [seeds, epochs] per configuration
    assert len(n["seeds"]) >= 2
    for order in ("shuffled", "fixed"):
        raw = loss[f"none/{order}"]
        for pre in ("standardize", "zca"):
            # on every seed and epoch, and by a clear margin at the end (≥ 30 % lower)
            assert np.all(loss[f"{pre}/{order}"] < raw), (pre, order)
            assert np.all(loss[f"{pre}/{order}"][:, -1] < 0.7 * raw[:, -1]), (pre, order)
    # every configuration learns (loss falls over the epochs)
    assert all(np.all(v[:, -1] < v[:, 0]) for v in loss.values())
    assert res.holds
    # the curves are the stored runs' per-epoch training losses (read back another way)
    from gradwatch.store import RunStore

    with RunStore(store) as s:
        stored = [[m["train_loss"] for m in s.metrics(i)] for i in res.run_ids]
    ours = [c for k in n["train_loss"] for c in n["train_loss"][k]]
    assert sorted(map(tuple, np.round(stored, 6))) == sorted(map(tuple, np.round(ours, 6)))


def test_bad_activation_is_reported_before_any_run(tmp_path):
    import pytest

    from gradwatch.errors import ConfigError

    with pytest.raises(ConfigError, match="activation"):
        get("preprocessing")(quick=True, activation="swishy", store=str(tmp_path / "r.sqlite"))
