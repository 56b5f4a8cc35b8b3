#!/usr/bin/env bash
# Fetch Apache Kafka's broker jars from Maven Central (the versions pinned in pom.xml beside
# this script) into a cache folder, and print that folder. LocalKafka
# (src/ates/platform/broker/kafka/server.py) runs the broker from it with `java -cp`.
#
#   deploy/kafka/fetch.sh            # -> ${ATES_KAFKA_HOME:-~/.cache/ates/kafka}/libs
#
# Idempotent and quick when done: the folder carries a stamp of the pom it was made from,
# and is refetched only when the pom changes. Needs Java (17+) and Maven on the PATH.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
home="${ATES_KAFKA_HOME:-$HOME/.cache/ates/kafka}"
libs="$home/libs"
stamp="$(sha256sum "$here/pom.xml" | cut -d' ' -f1)"

if [ -f "$libs/.stamp" ] && [ "$(cat "$libs/.stamp")" = "$stamp" ]; then
  echo "$libs"
  exit 0
fi

command -v mvn >/dev/null || { echo "error: Maven (mvn) is needed to fetch Kafka" >&2; exit 1; }
mkdir -p "$home"
# Copy into a fresh folder and swap it in at the end, so an interrupted fetch never leaves
# a half-filled libs folder that looks complete.
staging="$(mktemp -d "$home/libs.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
mvn -q -B -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$staging" >&2
echo "$stamp" >"$staging/.stamp"
rm -rf "$libs"
mv "$staging" "$libs"
trap - EXIT
echo "$libs"
