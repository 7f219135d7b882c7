from ecom_cli.main import main

raise SystemExit(main())
