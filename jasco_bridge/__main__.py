from jasco_bridge.cli import main

raise SystemExit(main())
