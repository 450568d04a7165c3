"""Off-ramp engine domain package: everything workflows and activities share.

Plain Python: it imports no Temporal workflow code and can be used by wallet backends directly.
"""
