from rushes.cli import main

raise SystemExit(main())
