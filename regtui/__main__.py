from regtui.cli import main

raise SystemExit(main())
