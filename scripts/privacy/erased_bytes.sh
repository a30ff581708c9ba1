#!/usr/bin/env bash
# Counts an erased user id's bytes in cairn.redb: before the erasure, after DELETE while serving,
# and after a clean stop (compaction). Usage: cairn demo --data-dir D; erased_bytes.sh user-0417 D
set -e
B=${CAIRN:-target/debug/cairn}
U=$1
D=${2:?usage: erased_bytes.sh USER DATA_DIR}
count() { python3 -c "import sys;d=open('$D/cairn.redb','rb').read();print(d.count(sys.argv[1].encode()), len(d))" "$U"; }
echo "before erasure: $(count)"
CAIRN_LOG=warn CAIRN_TRAIN__INTERVAL_SECS=0 $B serve --port 0 --data-dir $D > /tmp/pserve.out 2>/tmp/pserve.err &
PID=$!
for i in $(seq 50); do grep -q listening /tmp/pserve.out 2>/dev/null && break; sleep 0.2; done
URL=$(sed -n 's/cairn listening on //p' /tmp/pserve.out)
curl -s -X DELETE $URL/v1/users/$U; echo
echo "after erasure, serving: $(count)"
kill -TERM $PID; wait $PID
cat /tmp/pserve.err | grep -v WARN | tail -2
echo "after clean stop: $(count)"
