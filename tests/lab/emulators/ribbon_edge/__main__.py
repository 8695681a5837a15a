from emulators.ribbon_edge.server import main

raise SystemExit(main())
