"""HematoVision domain: model, data, training, storage, database and task contracts.

Nothing here imports the adapters (`bot`, `worker`); they meet only through this package
and the database.
"""
