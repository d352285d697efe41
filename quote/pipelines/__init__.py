# SPDX-License-Identifier: Apache-2.0
"""MAX pipeline integration: ``QuotePipeline`` and an in-process loader."""
