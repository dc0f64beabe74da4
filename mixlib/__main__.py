from mixlib.cli import main

raise SystemExit(main())
