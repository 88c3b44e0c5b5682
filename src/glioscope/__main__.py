from glioscope.cli import main

raise SystemExit(main())
