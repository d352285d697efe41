# SPDX-License-Identifier: Apache-2.0
"""JSON-schema-guaranteed output: a mod that keeps the completion valid for a schema."""
