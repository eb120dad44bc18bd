#!/usr/bin/env bash
# A Nagios-style check written against the Veeam Backup for Microsoft 365 REST API (v8): bash,
# curl and jq, the way such plugins are written.
#
#   vb365_check.sh URL USER PASSWORD
#
# Gets a token (POST /v8/Token, grant_type=password), reads every job (/v8/Jobs) and every job
# session (/v8/JobSessions, page by page), takes each job's newest session, and reads the license
# (/v8/License: status, expiry or "never" when it has none, licensed users). Exit status: 0 OK, 1 WARNING (a job's last
# session warned or was stopped, or the license is not Valid), 2 CRITICAL (a job's last session
# failed), 3 UNKNOWN (the API could not be read).
set -uo pipefail

url=${1:?usage: vb365_check.sh URL USER PASSWORD}
user=${2:?user}
password=${3:?password}

# UNKNOWN is said on the script's own stdout (fd 3), also from inside $(...) substitutions.
exec 3>&1
unknown() { echo "UNKNOWN - $*" >&3; exit 3; }

token=$(curl -sS -f -X POST "$url/v8/Token" --data-urlencode grant_type=password \
  --data-urlencode "username=$user" --data-urlencode "password=$password" \
  | jq -r '.access_token // empty') || unknown "cannot get a token from $url"
[ -n "$token" ] || unknown "no access_token in the token answer"

vb() {  # vb PATH [curl args...]: a JSON answer, or UNKNOWN
  local path=$1; shift
  curl -sS -f -G -H "Authorization: Bearer $token" "$@" "$url$path" \
    || unknown "GET $path failed"
}

all_pages() {  # all_pages PATH: the results of every page, as one JSON array
  local path=$1 offset=0 limit=50 page results='[]' count
  while :; do
    page=$(vb "$path" --data-urlencode "offset=$offset" --data-urlencode "limit=$limit") || exit 3
    count=$(echo "$page" | jq '.results | length') || unknown "$path is not a page"
    results=$(jq -c -n --argjson a "$results" --argjson b "$(echo "$page" | jq -c .results)" '$a + $b')
    [ "$count" -lt "$limit" ] && break
    offset=$((offset + limit))
  done
  printf '%s' "$results"
}

jobs=$(all_pages /v8/Jobs) || exit 3
sessions=$(all_pages /v8/JobSessions) || exit 3
license=$(vb /v8/License) || exit 3

last=$(jq -c -n --argjson jobs "$jobs" --argjson sessions "$sessions" '
  ($jobs | map({(.id): .name}) | add // {}) as $names
  | $sessions | group_by(.jobId) | map(max_by(.creationTime) | {job: $names[.jobId], status})')
failed=$(echo "$last" | jq -r '[.[] | select(.status == "Failed") | .job] | join(", ")')
warned=$(echo "$last" | jq -r '[.[] | select(.status == "Warning" or .status == "Stopped")
  | .job] | join(", ")')
read -r lic_status lic_expires lic_used < <(echo "$license" \
  | jq -r '"\(.status) \(.licenseExpires // "never") \(.usedNumber)"') || unknown "/v8/License is not a license"

curl -sS -o /dev/null -X POST -H "Authorization: Bearer $token" "$url/v8/Token/logout" || true

summary="license $lic_status until $lic_expires | jobs=$(echo "$jobs" | jq length) sessions=$(echo "$sessions" | jq length) licensed_users=$lic_used"
if [ -n "$failed" ]; then
  echo "CRITICAL - last session failed: $failed; $summary"; exit 2
elif [ -n "$warned" ] || [ "$lic_status" != Valid ]; then
  echo "WARNING - last session warned or stopped: ${warned:-none}; $summary"; exit 1
fi
echo "OK - $summary"
