"""Debug-build render times of the dashboard on the browser tests' demo shop (docs/DASHBOARD.md,
"Render times"): the demo directory, a second trained version, 40 batches refused by the API,
then scripts/dashboard_timing.py BASE 20. Usage: scripts/browser-tests.sh --run timing_demo.py"""

import subprocess, sys, os
sys.path.insert(0, os.getcwd())
import cairn_server as cs
d = cs.demo_dir()
s = cs.Server(d)
try:
    cs.second_version(s)
    for n in range(40):
        cs.http("POST", s.base + "/v1/events", {"events": [{"user_id": "t", "item_id": f"nope-{n}", "type": "view"}]})
    out = subprocess.run([sys.executable, os.path.join(cs.ROOT, "scripts", "dashboard_timing.py"), s.base, "20"],
                         capture_output=True, text=True)
    print(out.stdout, out.stderr)
finally:
    s.stop(); cs.remove(d)
