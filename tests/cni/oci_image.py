#!/usr/bin/python3
"""Writes an OCI image archive (image-layout, as `ctr images import` takes
it) from a root filesystem directory: one uncompressed layer, the config,
the manifest and index.json naming the image. No registry, no daemon.

  oci_image.py ROOTFS NAME ARCHIVE    e.g. rootfs cnx.local/busybox:1 image.tar
"""
import hashlib, io, json, os, sys, tarfile

GOARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def layer_tar(rootfs):
    """The rootfs as a tar, root-owned, in a stable order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for d, dirs, files in os.walk(rootfs):
            dirs.sort()
            for n in sorted(dirs) + sorted(files):
                p = os.path.join(d, n)
                info = t.gettarinfo(p, arcname=os.path.relpath(p, rootfs))
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                info.mtime = 0
                if info.isreg():
                    with open(p, "rb") as f:
                        t.addfile(info, f)
                else:
                    t.addfile(info)
    return buf.getvalue()


def blob(out, data, media_type):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo("blobs/sha256/" + digest.split(":")[1])
    info.size = len(data)
    out.addfile(info, io.BytesIO(data))
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    rootfs, name, archive = sys.argv[1:]
    if ":" not in name.rsplit("/", 1)[-1]:
        sys.exit("image name %s needs a tag (name:tag)" % name)
    arch = GOARCH.get(os.uname().machine, os.uname().machine)
    layer = layer_tar(rootfs)
    config = {
        "architecture": arch, "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
    }
    with tarfile.open(archive, "w") as out:
        lay = blob(out, layer, "application/vnd.oci.image.layer.v1.tar")
        cfg = blob(out, json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json")
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": cfg, "layers": [lay]}
        man = blob(out, json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json")
        man["platform"] = {"architecture": arch, "os": "linux"}
        man["annotations"] = {"io.containerd.image.name": name,
                              "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]}
        for fname, obj in (("oci-layout", {"imageLayoutVersion": "1.0.0"}),
                           ("index.json", {"schemaVersion": 2, "manifests": [man]})):
            data = json.dumps(obj).encode()
            info = tarfile.TarInfo(fname)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))


if __name__ == "__main__":
    main()
