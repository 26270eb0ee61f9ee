"""Import of public EV charging data sets into sites, chargers and sessions.

One module per file format (``acn_csv``, ``acn_json``, ``trondheim``,
``workplace``); ``base`` holds the records and helpers they share, ``writer``
the bulk upserts, ``runner`` the entry point ``sessions_import``.
"""
