"""`python -m app` is the `convect` command."""

from app.cli import main

main()
