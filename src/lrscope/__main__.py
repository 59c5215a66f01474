"""`python -m lrscope` is the `lrscope` command (used under torchrun)."""

from lrscope.cli import main

raise SystemExit(main())
