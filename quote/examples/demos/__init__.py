# SPDX-License-Identifier: Apache-2.0
"""One small mod per action (see README.md)."""
