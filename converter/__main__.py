from converter.cli import entry

entry()
