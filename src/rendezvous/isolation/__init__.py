"""The model process: shadow models computed away from the serving process's GIL and CPU.

:class:`~.host.ModelProcess` is the serving process's side (start, hand requests over,
collect scores, restart), :mod:`.child` is what runs in the process, :mod:`.pipe` carries
:mod:`.frames` between the two.
"""
