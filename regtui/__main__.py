from regtui.cli import run

run()
