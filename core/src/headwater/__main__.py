"""`python -m headwater`: the same as the `headwater` command."""

from .cli import main

main()
