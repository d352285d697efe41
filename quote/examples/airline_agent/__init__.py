# SPDX-License-Identifier: Apache-2.0
"""A tau2-style airline customer-service agent built with the Flow engine (see README.md)."""
