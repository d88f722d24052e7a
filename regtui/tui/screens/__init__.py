"""Screens over the workbench: help, guided fix, image and export prompts."""
