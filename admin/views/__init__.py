"""Request handlers, one module per page family. Routes and permissions are in
:mod:`admin.routes`; handlers assume the middlewares in :mod:`admin.security` ran."""
