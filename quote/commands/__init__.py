# SPDX-License-Identifier: Apache-2.0
"""Subcommands of the ``quote`` command line (:mod:`quote.cli` registers them)."""
