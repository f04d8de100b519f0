"""Reads rota's pinned service map straight through bpf(2) (ctypes; the
call releases the GIL): a lookup costs microseconds, so the benchmark can
poll one frontend's master entry without a process per look. Key and value
layouts are struct rota_svc_key / rota_svc_entry of include/rota/maps.h."""
import ctypes
import os
import socket
import struct

SYS_BPF = 321                   # x86_64
BPF_MAP_LOOKUP_ELEM = 1
BPF_OBJ_GET = 7
ATTR_SIZE = 128                 # larger than every command's part of union bpf_attr
IPPROTO_TCP = 6

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

SVC_KEY = struct.Struct("<4s2sBBI")         # addr (be32), port (be16), proto, scope, slot
SVC_ENTRY = struct.Struct("<IIIIIHBB")      # backend_id, count, terminating, svc_id, affinity, flags, type, pad
assert SVC_KEY.size == 12 and SVC_ENTRY.size == 24


def _bpf(cmd, attr):
    r = _libc.syscall(SYS_BPF, cmd, ctypes.byref(attr), ATTR_SIZE)
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


class SvcMap:
    """rota_svc4 pinned under a bpffs directory."""

    def __init__(self, bpffs_dir):
        self.path = os.path.join(bpffs_dir, "rota_svc4").encode()
        attr = ctypes.create_string_buffer(ATTR_SIZE)
        pathbuf = ctypes.create_string_buffer(self.path)
        struct.pack_into("<Q", attr, 0, ctypes.addressof(pathbuf))
        self.fd = _bpf(BPF_OBJ_GET, attr)
        self._attr = ctypes.create_string_buffer(ATTR_SIZE)
        self._key = ctypes.create_string_buffer(SVC_KEY.size)
        self._val = ctypes.create_string_buffer(SVC_ENTRY.size)
        struct.pack_into("<IIQQ", self._attr, 0, self.fd, 0, ctypes.addressof(self._key), ctypes.addressof(self._val))

    def close(self):
        os.close(self.fd)

    @staticmethod
    def key(addr, port, slot=0, proto=IPPROTO_TCP):
        return SVC_KEY.pack(socket.inet_aton(addr), struct.pack(">H", port), proto, 0, slot)

    def lookup(self, key):
        """The entry as a tuple (see SVC_ENTRY), or None if absent."""
        ctypes.memmove(self._key, key, SVC_KEY.size)
        r = _libc.syscall(SYS_BPF, BPF_MAP_LOOKUP_ELEM, ctypes.byref(self._attr), ATTR_SIZE)
        if r < 0:
            e = ctypes.get_errno()
            if e == 2:          # ENOENT
                return None
            raise OSError(e, os.strerror(e))
        return SVC_ENTRY.unpack(self._val.raw)

    def master_count(self, key):
        """Active backends of the frontend's master entry; None if absent."""
        e = self.lookup(key)
        return None if e is None else e[1]
