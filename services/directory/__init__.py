"""Directory (AD/LDAP) import: `adapter` owns every ldap3 call, `mapping` turns entries into
people (pure), `targets` writes them as person customers or contacts, `pipeline` runs an import
or a dry run, `sources` saves a source's settings and tests its connection."""
