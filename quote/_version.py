# SPDX-License-Identifier: Apache-2.0
"""The single source of Quote's version number."""

__version__ = "0.1.0"
