from ratesvc.cli import main

raise SystemExit(main())
