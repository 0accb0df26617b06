import xml.etree.ElementTree as ET, sys, collections
def load(p):
    res = {}
    for tc in ET.parse(p).getroot().iter("testcase"):
        tid = tc.get("classname") + "::" + tc.get("name")
        st, msg = "passed", ""
        for ch in tc:
            if ch.tag in ("failure", "error", "skipped"):
                m = (ch.get("message") or "").strip().splitlines()
                new = {"failure": "failed", "error": "error", "skipped": "skipped"}[ch.tag]
                if ch.tag == "skipped" and ch.get("type") == "pytest.xfail": new = "xfailed"
                # worst outcome wins (subtests may add several entries)
                rank = {"passed":0,"skipped":1,"xfailed":1,"failed":3,"error":3}
                if rank[new] >= rank[st]:
                    if rank[new] > rank[st] or not msg: msg = m[0][:300] if m else ""
                    st = new if rank[new] > rank[st] else st
        res.setdefault(tid, []).append((st, msg))
    out = {}
    rank = {"passed":0,"skipped":1,"xfailed":1,"failed":3,"error":3}
    for k, v in res.items():
        out[k] = max(v, key=lambda x: rank[x[0]])
    return out
u, p = load(sys.argv[1]), load(sys.argv[2])
for name, d in (("unpatched", u), ("patched", p)):
    print(name, len(d), collections.Counter(s for s, _ in d.values()))
print("only in one:", set(u) ^ set(p))
reg = [k for k in u if u[k][0] == "passed" and p.get(k, ("missing",))[0] != "passed"]
print("\nREGRESSIONS", len(reg))
for k in sorted(reg): print(p[k][0], k, "|", p[k][1])
both = [k for k in u if u[k][0] in ("failed","error") and p.get(k,("?",))[0] in ("failed","error")]
print("\nFAIL BOTH", len(both))
for k in sorted(both): print(k, "| U:", u[k][1][:150], "| P:", p[k][1][:150])
other = [k for k in u if u[k][0] != "passed" and p.get(k,("?",))[0] != u[k][0] and k not in both]
print("\nOTHER CHANGES", len(other))
for k in sorted(other): print(u[k][0], "->", p[k][0], k, "|", p[k][1][:150])
