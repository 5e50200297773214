"""A clean Debian 12 root unpacked from the cached debootstrap tarball, and
commands run in it. Each command runs in its own mount namespace, so the
/proc and /dev mounted for it vanish with it, whatever happens."""
import os
import subprocess

# $1 is the root; the rest is the command, run from /srv/app when it exists.
_ENTER = ('mount -t proc proc "$1/proc" && mount --rbind /dev "$1/dev" && r=$1 && shift && '
          'exec chroot "$r" /bin/sh -c \'cd /srv/app 2>/dev/null || cd /; exec "$@"\' sh "$@"')
# The host's variables must not leak in (PATH from pyenv, LD_PRELOAD, ...).
BASE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8", "HOME": "/root", "DEBIAN_FRONTEND": "noninteractive"}


class DebianRoot:
    def __init__(self, tarball, path):
        self.path = path
        os.makedirs(path, exist_ok=True)
        subprocess.run(["tar", "-C", path, "--numeric-owner", "-xf", tarball], check=True)
        with open("/etc/resolv.conf", "rb") as src, open(self.file("/etc/resolv.conf"), "wb") as dst:
            dst.write(src.read())

    def file(self, inside):
        return os.path.join(self.path, inside.lstrip("/"))

    def argv(self, *cmd, pid_namespace=False):
        """argv running cmd inside the root (as PID 1 of a new PID namespace
        with its own /proc when pid_namespace)."""
        unshare = ["unshare", "--mount", "--fork"]
        if pid_namespace:
            unshare += ["--pid", "--kill-child"]
        return unshare + ["sh", "-c", _ENTER, "sh", self.path, *cmd]

    def env(self, **extra):
        env = dict(BASE_ENV)
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def run(self, *cmd, check=True, timeout=600, **env):
        r = subprocess.run(self.argv(*cmd), env=self.env(**env), capture_output=True, text=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError("%s exited %d:\n%s\n%s" % (" ".join(cmd), r.returncode, r.stdout[-3000:],
                                                            r.stderr[-3000:]))
        return r

    def files(self, skip=("/proc", "/dev", "/sys", "/run", "/tmp", "/var/cache/apt", "/var/lib/apt/lists")):
        """Every path in the root (as seen inside it), but the volatile ones."""
        out = set()
        for dirpath, dirnames, filenames in os.walk(self.path):
            inside = "/" + os.path.relpath(dirpath, self.path).lstrip(".")
            inside = inside if inside != "/" else ""
            keep = []
            for d in dirnames:
                p = inside + "/" + d
                if p in skip:
                    continue
                out.add(p)
                if not os.path.islink(os.path.join(dirpath, d)):
                    keep.append(d)
            dirnames[:] = keep
            out.update(inside + "/" + f for f in filenames)
        return out
