#!/usr/bin/env bash
# The product's catalogs (translations/<sk|cs>/LC_MESSAGES/messages.po), with Babel's pybabel:
#   scripts/i18n.sh compile   the .mo files the app reads (bootstrap.sh runs it; they are not kept in git)
#   scripts/i18n.sh update    extract every marked string (babel.cfg) into messages.pot and merge
#                             it into both catalogs; new strings arrive untranslated, and
#                             tests/test_translations.py fails until they are translated
set -euo pipefail
cd "$(dirname "$0")/.."
pybabel=.venv/bin/pybabel
case "${1:-compile}" in
  compile)
    "$pybabel" -q compile -d translations
    ;;
  update)
    "$pybabel" -q extract -F babel.cfg -k _l -k lazy_gettext -k ngettext:1,2 -o translations/messages.pot \
      --no-location --omit-header --sort-output --ignore-dirs='.venv node_modules tests bench testing migrations' .
    for lang in sk cs; do
      if [ -f "translations/$lang/LC_MESSAGES/messages.po" ]; then
        "$pybabel" -q update -i translations/messages.pot -d translations -l "$lang" --no-fuzzy-matching --no-wrap
      else
        "$pybabel" -q init -i translations/messages.pot -d translations -l "$lang"
      fi
    done
    ;;
  *) echo "usage: $0 compile|update" >&2; exit 2 ;;
esac
