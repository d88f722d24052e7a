"""The workbench: a Textual front end over the engine (the only part of regtui that imports textual)."""
