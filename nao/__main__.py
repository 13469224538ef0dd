from nao.cli import main

raise SystemExit(main())
