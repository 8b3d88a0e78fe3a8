"""Nengo extensions: rule types and networks (the frontend), their builders and operators.

Importing the package registers the builders with Nengo, as importing ``nengo`` registers its own.
"""

from snn_sac_ros.core.nengo_ext import builder  # noqa: F401
