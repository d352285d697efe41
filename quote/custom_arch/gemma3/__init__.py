# SPDX-License-Identifier: Apache-2.0
"""Quote's own single-device Gemma3 for MAX (float32 on CPU, bfloat16 on GPU)."""
