# SPDX-License-Identifier: Apache-2.0
"""``python -m quote``: the ``quote`` command line."""

from quote.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
