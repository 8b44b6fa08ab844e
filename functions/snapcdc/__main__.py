from snapcdc.local.cli import main

raise SystemExit(main())
