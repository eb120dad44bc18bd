#!/usr/bin/env bash
# A Nagios-style check of backup job sessions written against Veeam Backup Enterprise Manager's
# REST API, the way such plugins are written: bash, curl and jq, JSON answers, nothing else.
#
#   em_monitor.sh URL USER PASSWORD [FREE_WARN_PERCENT]
#
# Logs on with HTTP Basic (POST /api/sessionMngr/?v=latest, X-RestSvcSessionId), lists every
# backup session (/api/backupSessions?format=Entity: backup server = Links[0].Name, JobName,
# Result, CreationTimeUTC), asks the query service for the last 24 hours' sessions (a filter
# value without a zone, as EM clients send it), reads the repositories' Capacity and FreeSpace,
# then logs off. Exit status: 0 OK, 1 WARNING (a job's last run warned, or a repository is
# short of space), 2 CRITICAL (a job's last run failed), 3 UNKNOWN (the API could not be read).
set -uo pipefail

url=${1:?usage: em_monitor.sh URL USER PASSWORD [FREE_WARN_PERCENT]}
user=${2:?user}
password=${3:?password}
free_warn=${4:-5}
headers=$(mktemp)
trap 'rm -f "$headers"' EXIT

# UNKNOWN is said on the script's own stdout (fd 3), also from inside $(...) substitutions.
exec 3>&1
unknown() { echo "UNKNOWN - $*" >&3; exit 3; }

status=$(curl -sS -o /dev/null -D "$headers" -w '%{http_code}' -X POST \
  -u "$user:$password" "$url/api/sessionMngr/?v=latest") || unknown "cannot reach $url"
[ "$status" = 201 ] || unknown "logon answered HTTP $status"
token=$(awk -F': ' 'tolower($1) == "x-restsvcsessionid" {print $2}' "$headers" | tr -d '\r')
logon=$(awk -F': ' 'tolower($1) == "location" {print $2}' "$headers" | tr -d '\r')
[ -n "$token" ] || unknown "no X-RestSvcSessionId in the logon answer"

em() {  # em PATH [curl args...]: a JSON answer, or UNKNOWN
  local path=$1; shift
  local body
  body=$(curl -sS -f -G -H "X-RestSvcSessionId: $token" -H 'Accept: application/json' \
    "$@" "$url$path") || unknown "GET $path failed"
  printf '%s' "$body"
}

sessions=$(em /api/backupSessions --data-urlencode format=Entity)
echo "$sessions" | jq -e '.BackupJobSessions | type == "array"' >/dev/null \
  || unknown "/api/backupSessions?format=Entity has no BackupJobSessions array"
details=$(echo "$sessions" | jq -r '.BackupJobSessions[]
  | "\(.Links[0].Name)\t\(.JobName)\t\(.Result)\t\(.CreationTimeUTC)"')

since=$(date -u -d '24 hours ago' +%Y-%m-%dT%H:%M:%S)
recent=$(em /api/query --data-urlencode type=BackupJobSession \
  --data-urlencode format=Entities --data-urlencode "filter=CreationTime>=$since")
last_runs=$(echo "$recent" | jq -c '[.Entities.BackupJobSessions.BackupJobSessions[]]
  | group_by(.JobName) | map(max_by(.CreationTimeUTC))') \
  || unknown "the query service's answer has no Entities.BackupJobSessions.BackupJobSessions"
failed=$(echo "$last_runs" | jq -r '[.[] | select(.Result == "Failed") | .JobName] | join(", ")')
warned=$(echo "$last_runs" | jq -r '[.[] | select(.Result == "Warning") | .JobName] | join(", ")')
recent_count=$(echo "$last_runs" | jq '[.[]] | length')

repositories=$(em /api/repositories --data-urlencode format=Entity)
short=$(echo "$repositories" | jq -r --argjson warn "$free_warn" '[.Repositories[]
  | select(.Capacity > 0 and (.FreeSpace * 100 / .Capacity) < $warn) | .Name] | join(", ")') \
  || unknown "/api/repositories?format=Entity has no numeric Capacity and FreeSpace"
perfdata=$(echo "$repositories" | jq -r '[.Repositories[]
  | "\(.Name | gsub("[^A-Za-z0-9_]"; "_"))_used_percent=\((.Capacity - .FreeSpace) * 100 / .Capacity | floor)%"]
  | join(" ")')

[ -n "$logon" ] && curl -sS -o /dev/null -X DELETE -H "X-RestSvcSessionId: $token" "$logon"

summary="$recent_count job(s) ran in the last 24 hours | sessions=$(echo "$details" | grep -c .) $perfdata"
if [ -n "$failed" ]; then
  echo "CRITICAL - last run failed: $failed; $summary"; code=2
elif [ -n "$warned" ] || [ -n "$short" ]; then
  echo "WARNING - last run warned: ${warned:-none}; low on space: ${short:-none}; $summary"; code=1
else
  echo "OK - $summary"; code=0
fi
printf '%s\n' "$details"
exit "$code"
