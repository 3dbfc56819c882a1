#!/usr/bin/env bash
# Sets up what Customer Desk needs on this machine; safe to run again (it skips what is there).
#   scripts/bootstrap.sh run   Python 3.11 virtual environment with the pinned packages
#   scripts/bootstrap.sh test  the same plus the test tools and Debian's postgresql, chromium,
#                              dovecot-pop3d, slapd, ldap-utils, openssl and samba's AD DC (real servers
#                              for the tests)
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"

if [ "$mode" = test ]; then
  missing=()
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  # Tests run their own Dovecot (own config, folders and ports); the package's system service,
  # where one starts, listens on 110/995 and does not get in their way.
  [ -x /usr/sbin/dovecot ] || missing+=(dovecot-pop3d)
  # Tests run their own slapd too (testing/ldap_server.py: own config, database and ports).
  [ -x /usr/sbin/slapd ] || missing+=(slapd)
  command -v ldapsearch >/dev/null 2>&1 || missing+=(ldap-utils)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  # A real Active Directory: tests run their own Samba AD DC in a network namespace of its own
  # (testing/samba_dc.py); the package's services are never started. iproute2 makes the namespace.
  if [ ! -x /usr/sbin/samba ] || ! command -v samba-tool >/dev/null 2>&1; then
    missing+=(samba samba-ad-dc samba-ad-provision samba-dsdb-modules samba-vfs-modules winbind ldb-tools)
  fi
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      echo "Installing Debian packages: ${missing[*]}"
      apt-get update -qq
      # No system directory: slapd's package would otherwise create a database and start a
      # daemon on port 389 (harmless, but useless; a failed start does not fail the install).
      if [[ " ${missing[*]} " == *" slapd "* ]]; then
        echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
      fi
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
      echo "Missing Debian packages: ${missing[*]} — run 'make test' as root or install them." >&2
    fi
  fi
fi

python=$(command -v python3.11 || command -v python3)
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
extra=""; [ "$mode" = test ] && extra="[test]"
stamp=".venv/.installed-$mode"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q -e ".$extra"
  touch "$stamp"
fi
# The Slovak and Czech catalogs the app reads (scripts/i18n.sh; .mo files are built, not kept).
scripts/i18n.sh compile
