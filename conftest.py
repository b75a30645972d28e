"""Project-wide test configuration: the plugin is tested through pytester, in-process and in
subprocesses, against real loopback servers."""

pytest_plugins = ["pytester"]
