from emulators.ribbon_core.server import main

raise SystemExit(main())
