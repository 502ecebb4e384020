"""`python -m tf_vesselgan` is the `vesselgan` command."""
from tf_vesselgan.cli.main import main

raise SystemExit(main())
