from snapcdc_local.cli.main import main

raise SystemExit(main())
