"""regtui: why can't this host pull this image, and what exactly do I change?"""

__version__ = "0.1.0"
