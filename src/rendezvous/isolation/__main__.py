"""``python -m rendezvous.isolation``: the model process (see :mod:`.child`)."""

from .child import main

main()
