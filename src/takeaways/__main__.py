"""``python -m takeaways`` (also ``torchrun -m takeaways``)."""

import sys

from takeaways.cli import main

sys.exit(main())
