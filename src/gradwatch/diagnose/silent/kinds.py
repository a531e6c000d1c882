"""The kinds of silent-bug findings, in the order a diagnosis lists them (imports nothing, so that
:mod:`gradwatch.diagnose.findings` can list them without importing the rules)."""

SILENT_KINDS = ("missing_zero_grad", "clip_ineffective", "replica_divergence", "not_in_optimizer", "no_gradient",
                "eval_mode", "lr_collapse", "amp_skipping")
