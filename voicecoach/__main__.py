from voicecoach.cli.main import main

raise SystemExit(main())
