import sys

from coverforge.cli.main import main

sys.exit(main())
