"""`python -m local_ecr --port 5000 --scenario demo`"""

import sys

from local_ecr.cli import main

sys.exit(main())
