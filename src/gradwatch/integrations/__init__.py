"""Adapters that attach gradwatch's ``watch`` to the training frameworks people use: ``lightning``
(:class:`gradwatch.integrations.lightning.GradwatchCallback`) and ``transformers``
(:class:`gradwatch.integrations.transformers.GradwatchCallback`). Each module imports its framework, so import
the one you use."""
