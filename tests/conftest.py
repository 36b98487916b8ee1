"""Makes tests/ importable (kernelclient.py) for every test folder."""
