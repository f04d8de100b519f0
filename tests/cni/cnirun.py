#!/usr/bin/python3
"""Calls CNI plugins the way libcni (containerd, CRI-O) does.

  cnirun.py [options] add|del|check CONFLIST CONTAINERID NETNS IFNAME
  cnirun.py [options] gc CONFLIST [CONTAINERID/IFNAME ...]   (the valid attachments)
  cnirun.py [options] status|version CONFLIST

What libcni does and this does too:
  * cniVersion of the list, or the highest of cniVersions it supports;
  * each plugin's config = the plugin object + name + cniVersion of the
    list, runtimeConfig holding only the capabilities the plugin declares,
    and prevResult (ADD: the previous plugin's result; DEL/CHECK: the
    cached result of the ADD, spec >= 0.4.0);
  * ADD in list order, DEL in reverse order, CHECK in order; the ADD result
    is cached (--cache DIR, results/<net>-<cid>-<ifname>) and removed by DEL;
  * GC (1.1.0): DEL of every cached attachment not in the valid set, then
    GC on every plugin with cni.dev/valid-attachments and cni.dev/attachments;
  * environment: CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME,
    CNI_ARGS, CNI_PATH on top of our own; config on stdin.
Prints the final result (or the failing plugin's error JSON) on stdout and
exits 0, or 1 on error.
"""
import argparse, json, os, subprocess, sys

SUPPORTED = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]


def vkey(v):
    return tuple(int(x) for x in v.split("."))


class PluginError(Exception):
    def __init__(self, out, rc):
        super().__init__(out)
        self.out, self.rc = out, rc


def find(cni_path, typ):
    for d in cni_path.split(":"):
        p = os.path.join(d, typ)
        if d and os.access(p, os.X_OK):
            return p
    raise PluginError(json.dumps({"code": 50, "msg": "failed to find plugin %r in path %s" % (typ, cni_path)}), 1)


def run(a, plugin_conf, command, env_extra, stdin_obj):
    env = dict(os.environ)
    env.update({"CNI_COMMAND": command, "CNI_PATH": a.cni_path})
    env.update(env_extra)
    p = subprocess.run([find(a.cni_path, plugin_conf["type"])], input=json.dumps(stdin_obj).encode(),
                       stdout=subprocess.PIPE, env=env, timeout=60)
    out = p.stdout.decode()
    if p.returncode != 0:
        raise PluginError(out, p.returncode)
    return json.loads(out) if out.strip() else None


def plugin_config(lst, version, plugin, runtime, prev):
    c = dict(plugin)
    c["name"] = lst["name"]
    c["cniVersion"] = version
    caps = plugin.get("capabilities", {})
    rc = {k: v for k, v in runtime.items() if caps.get(k)}
    c.pop("runtimeConfig", None)
    if rc:
        c["runtimeConfig"] = rc
    if prev is not None:
        c["prevResult"] = prev
    return c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default="/var/lib/cni")
    ap.add_argument("--cni-path", default=os.environ.get("CNI_PATH", "/opt/cni/bin"))
    ap.add_argument("--args", default="")
    ap.add_argument("--runtime-config", default="{}", help="capability args as JSON (portMappings, bandwidth, ...)")
    ap.add_argument("command")
    ap.add_argument("conflist")
    ap.add_argument("rest", nargs="*")
    a = ap.parse_args()
    cmd = a.command.upper()
    with open(a.conflist) as f:
        lst = json.load(f)
    if "cniVersions" in lst:
        ok = [v for v in lst["cniVersions"] if v in SUPPORTED]
        version = max(ok, key=vkey) if ok else lst.get("cniVersion", "")
    else:
        version = lst.get("cniVersion", "")
    runtime = json.loads(a.runtime_config)
    plugins = lst["plugins"]
    try:
        if cmd in ("ADD", "DEL", "CHECK"):
            cid, netns, ifname = a.rest
            env = {"CNI_CONTAINERID": cid, "CNI_NETNS": netns, "CNI_IFNAME": ifname, "CNI_ARGS": a.args}
            cache = os.path.join(a.cache, "results", "%s-%s-%s" % (lst["name"], cid, ifname))
            cached = None
            if os.path.exists(cache):
                with open(cache) as f:
                    cached = json.load(f)
            if cmd == "ADD":
                prev = None
                for p in plugins:
                    prev = run(a, p, "ADD", env, plugin_config(lst, version, p, runtime, prev))
                os.makedirs(os.path.dirname(cache), exist_ok=True)
                with open(cache, "w") as f:
                    json.dump({"result": prev, "runtimeConfig": runtime, "cniArgs": a.args}, f)
                print(json.dumps(prev, indent=1))
            elif cmd == "DEL":
                prev = cached["result"] if cached and vkey(version) >= (0, 4, 0) else None
                rt = cached["runtimeConfig"] if cached else runtime
                for p in reversed(plugins):
                    run(a, p, "DEL", env, plugin_config(lst, version, p, rt, prev))
                if cached:
                    os.unlink(cache)
            else:
                if vkey(version) < (0, 4, 0) or lst.get("disableCheck"):
                    return 0
                if not cached:
                    print(json.dumps({"code": 999, "msg": "no cached result for %s/%s" % (cid, ifname)}))
                    return 1
                for p in plugins:
                    run(a, p, "CHECK", env, plugin_config(lst, version, p, cached["runtimeConfig"], cached["result"]))
        elif cmd == "GC":
            valid = []
            for s in a.rest:
                cid, ifname = s.split("/")
                valid.append({"containerID": cid, "ifname": ifname})
            rdir = os.path.join(a.cache, "results")
            for name in sorted(os.listdir(rdir)) if os.path.isdir(rdir) else []:
                if not name.startswith(lst["name"] + "-"):
                    continue
                cid, ifname = name[len(lst["name"]) + 1:].rsplit("-", 1)
                if {"containerID": cid, "ifname": ifname} in valid:
                    continue
                with open(os.path.join(rdir, name)) as f:
                    cached = json.load(f)
                env = {"CNI_CONTAINERID": cid, "CNI_NETNS": "", "CNI_IFNAME": ifname, "CNI_ARGS": cached["cniArgs"]}
                try:
                    for p in reversed(plugins):
                        run(a, p, "DEL", env, plugin_config(lst, version, p, cached["runtimeConfig"], cached["result"]))
                    os.unlink(os.path.join(rdir, name))
                except PluginError as e:
                    sys.stderr.write("GC: DEL %s/%s failed: %s\n" % (cid, ifname, e.out))
            if vkey(version) >= (1, 1, 0) and not lst.get("disableGC"):
                for p in plugins:
                    c = plugin_config(lst, version, p, {}, None)
                    c["cni.dev/valid-attachments"] = valid
                    c["cni.dev/attachments"] = valid
                    run(a, p, "GC", {}, c)
        elif cmd == "STATUS":
            for p in plugins:
                run(a, p, "STATUS", {}, plugin_config(lst, version, p, {}, None))
        elif cmd == "VERSION":
            for p in plugins:
                print(json.dumps(run(a, p, "VERSION", {}, {"cniVersion": version})))
        else:
            sys.stderr.write("unknown command %s\n" % cmd)
            return 2
    except PluginError as e:
        sys.stdout.write(e.out)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
