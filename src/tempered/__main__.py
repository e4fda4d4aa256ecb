from tempered.cli import main

raise SystemExit(main())
