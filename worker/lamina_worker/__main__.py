"""``python -m lamina_worker ...`` runs :func:`lamina_worker.main.main`."""

import sys

from lamina_worker.main import main

sys.exit(main())
