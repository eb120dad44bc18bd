#!/usr/bin/env bash
# An InfluxDB collector for Veeam Backup Enterprise Manager written the way the widely used
# Grafana collectors are (bash, curl, jq, awk): it prints InfluxDB line protocol on stdout where
# those POST it to InfluxDB.
#
#   em_influx_lines.sh URL USER PASSWORD
#
# Like them, it never reads the logon's X-RestSvcSessionId header: it takes SessionId from the
# logon's JSON body and sends base64(SessionId) as the header and as the cookie, which
# Enterprise Manager accepts because its token is made that way. It strips a UTF-8 byte order
# mark from every answer, turns times into epoch seconds with `date -d`, escapes spaces in tag
# values, reads the summary reports, the repositories, the backup sessions and the task sessions
# (one per user, VmDisplayName), and logs off by DELETE /api/logonSessions/{SessionId}. Exit
# status 0, or 3 with a line on stderr when the API could not be read.
set -uo pipefail

url=${1:?usage: em_influx_lines.sh URL USER PASSWORD}
user=${2:?user}
password=${3:?password}
fail() { echo "em_influx_lines: $*" >&2; exit 3; }

no_bom() { awk 'NR==1{sub(/^\xef\xbb\xbf/,"")}1'; }
tag() { awk '{gsub(/ /,"\\ ");print}'; }

auth=$(echo -ne "$user:$password" | base64)
session_id=$(curl -sS -X POST "$url/api/sessionMngr/?v=latest" -H "Authorization: Basic $auth" \
  -H "Content-Length: 0" -H "Accept: application/json" | no_bom | jq -r '.SessionId') \
  || fail "cannot log on"
[ -n "$session_id" ] && [ "$session_id" != null ] || fail "the logon answered no SessionId"
token=$(echo -ne "$session_id" | base64 -w0)

em() {  # em PATH: a JSON answer
  curl -sS -f -X GET "$url$1" -H "Accept: application/json" -H "X-RestSvcSessionId: $token" \
    -H "Cookie: X-RestSvcSessionId=$token" -H "Content-Length: 0" | no_bom
}
field() { echo "$1" | jq -r "$2"; }
epoch() { date -d "$1" +%s; }

overview=$(em /api/reports/summary/overview) || fail "GET overview failed"
echo "em_overview backupServers=$(field "$overview" .BackupServers),runningJobs=$(field "$overview" .RunningJobs),scheduledJobs=$(field "$overview" .ScheduledJobs)"

stats=$(em /api/reports/summary/job_statistics) || fail "GET job_statistics failed"
echo "em_jobs,longestJob=$(field "$stats" .MaxDurationBackupJobName | tag) totalRuns=$(field "$stats" .TotalJobRuns),successfulRuns=$(field "$stats" .SuccessfulJobRuns),failedRuns=$(field "$stats" .FailedJobRuns)"

repositories=$(em "/api/repositories?format=Entity") || fail "GET repositories failed"
count=$(field "$repositories" '.Repositories | length')
for ((i = 0; i < count; i++)); do
  name=$(field "$repositories" ".Repositories[$i].Name" | tag)
  server=$(field "$repositories" ".Repositories[$i].Links[0].Name" | tag)
  echo "em_repository,server=$server,repository=$name capacity=$(field "$repositories" ".Repositories[$i].Capacity"),freeSpace=$(field "$repositories" ".Repositories[$i].FreeSpace")"
done

sessions=$(em "/api/backupSessions?format=Entity") || fail "GET backupSessions failed"
count=$(field "$sessions" '.BackupJobSessions | length')
for ((i = 0; i < count; i++)); do
  job=$(field "$sessions" ".BackupJobSessions[$i].JobName" | tag)
  result=$(field "$sessions" ".BackupJobSessions[$i].Result")
  created=$(epoch "$(field "$sessions" ".BackupJobSessions[$i].CreationTimeUTC")") \
    || fail "a session's CreationTimeUTC is not a time"
  ended=$(epoch "$(field "$sessions" ".BackupJobSessions[$i].EndTimeUTC")") \
    || fail "a session's EndTimeUTC is not a time"
  echo "em_job_session,job=$job,result=$result duration=$((ended - created)) $created"
done

tasks=$(em "/api/backupTaskSessions?format=Entity") || fail "GET backupTaskSessions failed"
count=$(field "$tasks" '.BackupTaskSessions | length')
for ((i = 0; i < count; i++)); do
  who=$(field "$tasks" ".BackupTaskSessions[$i].VmDisplayName" | tag)
  created=$(epoch "$(field "$tasks" ".BackupTaskSessions[$i].CreationTimeUTC")") \
    || fail "a task session's CreationTimeUTC is not a time"
  echo "em_task_session,user=$who,result=$(field "$tasks" ".BackupTaskSessions[$i].Result") totalSize=$(field "$tasks" ".BackupTaskSessions[$i].TotalSize") $created"
done

status=$(curl -sS -o /dev/null -w '%{http_code}' -X DELETE "$url/api/logonSessions/$session_id" \
  -H "X-RestSvcSessionId: $token") || fail "cannot log off"
[ "$status" = 204 ] || fail "logging off answered HTTP $status"
