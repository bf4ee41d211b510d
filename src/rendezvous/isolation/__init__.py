"""Model processes: synchronous models computed away from the serving process's GIL.

:class:`~.host.ModelHost` starts and feeds the process, :class:`~.host.ProcessModel` is
the model an executor holds, :mod:`.child` is what runs in the process, and
:mod:`.frames` is what the two say over the pipe.
"""
