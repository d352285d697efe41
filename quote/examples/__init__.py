# SPDX-License-Identifier: Apache-2.0
"""Runnable Quote examples (importable as a package from the repository root)."""
