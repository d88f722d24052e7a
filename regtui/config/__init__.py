"""Config readers: one module per source, each reading files the way its runtime does.

Every reader returns parsed data *with line numbers* (provenance for findings and routes) and
the findings that need no network. Shared plumbing lives in :mod:`regtui.config._source`.
"""
