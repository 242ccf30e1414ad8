"""The command line. main.py parses and dispatches (and holds session, devices and say); check, config, ctl,
install_service, journal, listen, model and run each add the subcommands named there; player plays a set in the
terminal, and service_steps is install-service's plan as data."""
