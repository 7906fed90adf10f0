#!/bin/sh
# scale.sh FUNCTION QUALIFIER MIN MAX
#
# Sets the execution environments a Managed Instances function version keeps
# (PutFunctionScalingConfig), then waits until shoal runs the version within the
# new bounds (AppliedFunctionScalingConfig), so that cron's mail says whether the
# capacity was there in time.
#
# Environment:
#   SHOAL_ENDPOINT_URL  shoal's API (default http://127.0.0.1:9000)
#   AWS_CLI             an aws CLI that knows the 2025-11-30 Managed Instances
#                       commands (default: aws)
#   WAIT                seconds to wait for the new bounds to apply (default 600;
#                       0 does not wait)
#   POLL                seconds between two looks (default 5)
#   and the usual AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION.
set -eu

if [ $# -ne 4 ]; then
	echo "usage: $0 FUNCTION QUALIFIER MIN MAX" >&2
	exit 2
fi
fn=$1 qualifier=$2 min=$3 max=$4
endpoint=${SHOAL_ENDPOINT_URL:-http://127.0.0.1:9000}
aws=${AWS_CLI:-aws}
wait=${WAIT:-600}
poll=${POLL:-5}

lambda() {
	"$aws" --endpoint-url "$endpoint" --output text lambda "$@"
}

state=$(lambda put-function-scaling-config --function-name "$fn" --qualifier "$qualifier" \
	--function-scaling-config "MinExecutionEnvironments=$min,MaxExecutionEnvironments=$max" \
	--query FunctionState)
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $fn:$qualifier asked for $min..$max environments ($state)"

[ "$wait" -gt 0 ] || exit 0
waited=0
while :; do
	applied=$(lambda get-function-scaling-config --function-name "$fn" --qualifier "$qualifier" \
		--query 'AppliedFunctionScalingConfig.[MinExecutionEnvironments,MaxExecutionEnvironments]' | tr -s ' \t' ' ')
	if [ "$applied" = "$min $max" ]; then
		echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $fn:$qualifier runs within $min..$max environments"
		exit 0
	fi
	if [ "$waited" -ge "$wait" ]; then
		echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $fn:$qualifier still runs within ${applied:-nothing} after ${wait}s" >&2
		exit 1
	fi
	sleep "$poll"
	waited=$((waited + poll))
done
