#!/usr/bin/python3
"""Reads deploy/*.yaml the way the API server and kubelet would, for tests.

  podspec.py validate FILE...
      Every document parses, has apiVersion/kind/metadata.name, and uses only
      fields the Kubernetes API defines for its kind (python3-kubernetes'
      models, checked recursively: a misspelt key is an error, naming its
      path). Prints one line per object.

  podspec.py run-init FILE CONTAINER --root DIR [--image-path CPATH=PATH]...
                      [--field spec.nodeName=VALUE]... [--env K=V]...
      Runs init container CONTAINER of the DaemonSet in FILE as kubelet
      would, on this machine: its command and args exactly, its env (values,
      fieldRef from --field; optional envFrom sources that do not exist are
      skipped, as kubelet does), with --env added as kubelet's own variables
      (KUBERNETES_SERVICE_HOST/PORT, ...). Its hostPath volumeMounts must all
      be the host path under one prefix in the container (mountPath =
      PREFIX + hostPath, as a DESTDIR layout needs); PREFIX then stands for
      DIR, and --image-path maps paths inside the image to real files.
      Exits with the container's status.
"""
import os, re, subprocess, sys
import yaml
from kubernetes import client

MODELS = {("v1", "ServiceAccount"): "V1ServiceAccount",
          ("apps/v1", "DaemonSet"): "V1DaemonSet",
          ("rbac.authorization.k8s.io/v1", "ClusterRole"): "V1ClusterRole",
          ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "V1ClusterRoleBinding"}


def check_fields(obj, typ, path, errors):
    """obj against the model type name typ ('V1PodSpec', 'list[V1Container]', ...)."""
    m = re.match(r"list\[(.*)\]$", typ)
    if m:
        if not isinstance(obj, list):
            errors.append("%s: a list is expected" % path)
            return
        for i, o in enumerate(obj):
            check_fields(o, m.group(1), "%s[%d]" % (path, i), errors)
        return
    if typ.startswith("dict(") or typ == "object":
        return
    model = getattr(client, typ, None)
    if model is None:  # str, int, bool, datetime
        if isinstance(obj, (dict, list)):
            errors.append("%s: a %s is expected" % (path, typ))
        return
    if not isinstance(obj, dict):
        errors.append("%s: an object (%s) is expected" % (path, typ))
        return
    json_to_attr = {v: k for k, v in model.attribute_map.items()}
    for key, val in obj.items():
        if key not in json_to_attr:
            errors.append("%s.%s: %s has no such field" % (path, key, typ))
            continue
        check_fields(val, model.openapi_types[json_to_attr[key]], "%s.%s" % (path, key), errors)


def validate(files):
    errors = []
    for f in files:
        with open(f) as fh:
            docs = [d for d in yaml.safe_load_all(fh) if d is not None]
        for i, d in enumerate(docs):
            where = "%s[%d]" % (f, i)
            if not isinstance(d, dict) or not all(d.get(k) for k in ("apiVersion", "kind")) \
                    or not (d.get("metadata") or {}).get("name"):
                errors.append("%s: apiVersion, kind and metadata.name are required" % where)
                continue
            model = MODELS.get((d["apiVersion"], d["kind"]))
            if not model:
                errors.append("%s: %s %s is not a kind this check knows" % (where, d["apiVersion"], d["kind"]))
                continue
            check_fields(d, model, "%s(%s/%s)" % (where, d["kind"], d["metadata"]["name"]), errors)
            print("%s: %s %s/%s" % (f, d["apiVersion"], d["kind"], d["metadata"]["name"]))
    for e in errors:
        print("ERROR: " + e, file=sys.stderr)
    return 1 if errors else 0


def pairs(items, what):
    out = {}
    for it in items:
        if "=" not in it:
            sys.exit("%s %r is not KEY=VALUE" % (what, it))
        k, v = it.split("=", 1)
        out[k] = v
    return out


def run_init(argv):
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("container")
    ap.add_argument("--root", required=True)
    ap.add_argument("--image-path", action="append", default=[])
    ap.add_argument("--field", action="append", default=[])
    ap.add_argument("--env", action="append", default=[])
    a = ap.parse_args(argv)
    with open(a.file) as fh:
        ds = [d for d in yaml.safe_load_all(fh) if d and d.get("kind") == "DaemonSet"]
    if len(ds) != 1:
        sys.exit("%s: expected one DaemonSet, found %d" % (a.file, len(ds)))
    pod = ds[0]["spec"]["template"]["spec"]
    ctrs = [c for c in pod.get("initContainers", []) if c["name"] == a.container]
    if not ctrs:
        sys.exit("%s: no init container %s" % (a.file, a.container))
    c = ctrs[0]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    prefix = None
    for m in c.get("volumeMounts", []):
        v = volumes.get(m["name"])
        if not v or "hostPath" not in v:
            sys.exit("%s: mount %s is not a hostPath volume" % (a.container, m["name"]))
        host = v["hostPath"]["path"].rstrip("/")
        if not m["mountPath"].endswith(host):
            sys.exit("%s: mountPath %s is not <prefix>%s" % (a.container, m["mountPath"], host))
        p = m["mountPath"][:-len(host)]
        if prefix not in (None, p):
            sys.exit("%s: mounts use different prefixes (%s, %s)" % (a.container, prefix, p))
        prefix = p
    image = pairs(a.image_path, "--image-path")
    fields = pairs(a.field, "--field")

    def translate(s):
        for cpath, real in sorted(image.items(), key=lambda kv: -len(kv[0])):
            if s == cpath or s.startswith(cpath.rstrip("/") + "/"):
                return real + s[len(cpath):]
        if prefix and (s == prefix or s.startswith(prefix + "/")):
            return a.root + s[len(prefix):]
        return s

    env = {"PATH": os.environ["PATH"]}
    env.update(pairs(a.env, "--env"))  # kubelet's own (service links, ...)
    for src in c.get("envFrom", []):
        ref = src.get("configMapRef") or src.get("secretRef")
        if not (ref and ref.get("optional")):
            sys.exit("%s: envFrom %s is required and this run has no API objects" % (a.container, src))
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = translate(str(e["value"]))
        else:
            fp = e["valueFrom"]["fieldRef"]["fieldPath"]
            if fp not in fields:
                sys.exit("%s: env %s needs --field %s=..." % (a.container, e["name"], fp))
            env[e["name"]] = fields[fp]
    argv = [translate(x) for x in c.get("command", []) + c.get("args", [])]
    print("run-init: " + " ".join(argv), file=sys.stderr)
    return subprocess.call(argv, env=env)


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "validate":
        return validate(sys.argv[2:])
    if len(sys.argv) >= 2 and sys.argv[1] == "run-init":
        return run_init(sys.argv[2:])
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
