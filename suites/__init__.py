"""The bundled suites: plain pytest files to run as installed (`--observatory-suite NAME`,
`pytest --pyargs pytest_observatory.suites`) or to copy and adapt. This file makes the folder
the installed package pytest_observatory.suites; pytest_observatory/catalog.py names them."""
