"""Use cases, one per module. Services take a StoreContext and definitions; never the facade."""
