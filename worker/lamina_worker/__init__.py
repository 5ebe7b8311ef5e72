"""The data plane: claims jobs from the queue and trains them on Ray replicas.

``lamina_worker`` is the only package where ``lamina`` (the library), ``ray`` and
``lamina_service`` (the queue and storage) meet. Entry point:
:func:`lamina_worker.main.main` (``lamina worker`` / ``python -m lamina_worker``).
"""
