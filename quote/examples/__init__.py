# SPDX-License-Identifier: Apache-2.0
"""Runnable Quote examples, shipped in the package (``quote.examples``)."""
