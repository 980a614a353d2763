"""Hosts made of Linux network namespaces, for the multi-host end-to-end suite.

A Network is one run's private LAN: a "switch" namespace holding a bridge, and one namespace
per host, joined to the bridge by a veth pair (eth0 in the host, p-NAME on the bridge). Every
interface is created directly inside its namespace, so nothing appears in the machine's own
namespace and every run can use the same private range (10.231.0.0/24) without colliding.
Namespace names carry the driver's pid (tph-PID-NAME), so parallel runs never share one, and
a run deletes the namespaces of drivers that died without cleaning up.

A host is cut off without a FIN or RST by an nftables rule on the switch that drops every
frame from and to its port (the kernel here has no netem); deleting the rule heals it.

Processes run in a host with `ip netns exec`, which execs the command itself (its pid is the
process's, so SIGSTOP and SIGKILL reach it). The driver talks HTTP to a host through a socket
it creates inside that namespace (setns on its own thread and back).
"""

import ctypes
import os
import re
import socket
import subprocess

PREFIX = "tph-"
SUBNET = "10.231.0"
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)


class Unavailable(Exception):
    """Network namespaces cannot be made here (not root, no iproute2/nftables, no veth)."""


def _run(argv, stdin=None):
    r = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale():
    """Deletes tph-PID-* namespaces whose driver PID is gone (a run killed before cleanup)."""
    try:
        names = _run(["ip", "netns", "list"]).split("\n")
    except (RuntimeError, OSError):
        return []
    removed = []
    for line in names:
        m = re.match(rf"{PREFIX}(\d+)-\S+", line.strip())
        if m and not _pid_alive(int(m.group(1))):
            subprocess.run(["ip", "netns", "delete", m.group(0)], capture_output=True)
            removed.append(m.group(0))
    return removed


def probe():
    """Raises Unavailable with the reason when this machine cannot build the network."""
    if os.geteuid() != 0:
        raise Unavailable("needs root (ip netns add)")
    for tool in ("ip", "nft"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode:
            raise Unavailable(f"'{tool}' not found (Debian: iproute2, nftables)")
    name = f"{PREFIX}{os.getpid()}-probe"
    try:
        _run(["ip", "netns", "add", name])
        _run(["ip", "-n", name, "link", "add", "br0", "type", "bridge"])
        _run(["ip", "netns", "exec", name, "nft", "add", "table", "bridge", "probe"])
    except (RuntimeError, OSError) as e:
        raise Unavailable(str(e)) from e
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)


class Host:
    def __init__(self, network, name, address):
        self.network = network
        self.name = name
        self.address = address
        self.ns = f"{PREFIX}{os.getpid()}-{name}"
        self.port = f"p-{name}"  # its port on the bridge, in the switch namespace

    def argv(self, argv):
        """argv run inside this host."""
        return ["ip", "netns", "exec", self.ns, *map(str, argv)]

    def socket(self, family=socket.AF_INET, kind=socket.SOCK_STREAM):
        """A socket that lives in this host's network namespace."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{self.ns}", os.O_RDONLY)
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {self.ns}")
            try:
                return socket.socket(family, kind)
            finally:
                if _libc.setns(own, CLONE_NEWNET) != 0:
                    # A driver thread stuck in a test namespace would talk to the wrong hosts.
                    os._exit(3)
        finally:
            os.close(own)
            os.close(target)

    def http_get(self, host, port, path, timeout=2.0):
        """(status, body) of GET http://host:port/path from inside this host; (None, "")."""
        s = self.socket()
        try:
            s.settimeout(timeout)
            s.connect((host, port))
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                      .encode())
            chunks = []
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
        except OSError:
            return None, ""
        finally:
            s.close()
        raw = b"".join(chunks)
        head, _, body = raw.partition(b"\r\n\r\n")
        try:
            status = int(head.split(b" ", 2)[1])
        except (IndexError, ValueError):
            return None, ""
        return status, body.decode("utf-8", "replace")


class Network:
    """One run's LAN. Use as a context manager; close() is safe to call more than once."""

    def __init__(self):
        self.switch = f"{PREFIX}{os.getpid()}-switch"
        self.hosts = {}
        self._cut = set()
        self._next = 1
        try:
            _run(["ip", "netns", "add", self.switch])
            _run(["ip", "-n", self.switch, "link", "add", "br0", "type", "bridge"])
            _run(["ip", "-n", self.switch, "link", "set", "br0", "up"])
        except Exception:
            self.close()
            raise

    def add_host(self, name):
        address = f"{SUBNET}.{self._next}"
        self._next += 1
        host = Host(self, name, address)
        _run(["ip", "netns", "add", host.ns])
        self.hosts[name] = host
        _run(["ip", "link", "add", "eth0", "netns", host.ns, "type", "veth", "peer", "name",
              host.port, "netns", self.switch])
        _run(["ip", "-n", self.switch, "link", "set", host.port, "master", "br0", "up"])
        _run(["ip", "-n", host.ns, "link", "set", "lo", "up"])
        _run(["ip", "-n", host.ns, "addr", "add", f"{address}/24", "dev", "eth0"])
        _run(["ip", "-n", host.ns, "link", "set", "eth0", "up"])
        return host

    def cut(self, host, keep_arp=False):
        """Every frame from and to host is dropped on the switch: no FIN, no RST, no ARP.

        keep_arp: only IP is dropped, ARP still answered: a host cut off behind a router, whose
        own ARP entry stays good, so nothing tells the kernel that the host is unreachable (a
        neighbour that stops answering ARP fails connects with EHOSTUNREACH within seconds).
        """
        table = f"cut_{host.name.replace('-', '_')}"
        what = "ether type { ip, ip6 } " if keep_arp else ""
        rules = (f"table bridge {table} {{\n  chain forward {{\n"
                 f"    type filter hook forward priority 0; policy accept;\n"
                 f"    iifname \"{host.port}\" {what}drop\n"
                 f"    oifname \"{host.port}\" {what}drop\n  }}\n}}\n")
        _run(["ip", "netns", "exec", self.switch, "nft", "-f", "-"], stdin=rules)
        self._cut.add(table)

    def heal(self, host):
        table = f"cut_{host.name.replace('-', '_')}"
        _run(["ip", "netns", "exec", self.switch, "nft", "delete", "table", "bridge", table])
        self._cut.discard(table)

    def close(self):
        # Deleting a namespace destroys its end of each veth pair, and with it the other end.
        for host in list(self.hosts.values()):
            subprocess.run(["ip", "netns", "delete", host.ns], capture_output=True)
        self.hosts.clear()
        if self.switch:
            subprocess.run(["ip", "netns", "delete", self.switch], capture_output=True)
            self.switch = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
