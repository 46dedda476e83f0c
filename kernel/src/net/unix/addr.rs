//! AF_UNIX names (unix(7)): a path, bound as a socket inode in tmpfs, or
//! an abstract name (a leading NUL byte), in a table of its own. Bound
//! sockets are found by the path's inode or by the abstract name.

use abi::{Errno, KResult};
use alloc::borrow::Cow;
use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use spin::Mutex;
use vfs::{FileType, Ino};

use super::UnixSocket;
use crate::net::socket::AF_UNIX;

/// Bytes of sun_path.
const SUN_PATH: usize = 108;

/// A bound name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnixAddr {
    /// A path as given (without its NUL), and the socket inode it made.
    Path(Vec<u8>, Ino),
    /// An abstract name: the bytes after the leading NUL.
    Abstract(Vec<u8>),
}

/// What a sockaddr_un names.
pub enum Target {
    Path(Vec<u8>),
    Abstract(Vec<u8>),
    /// Only sun_family (bind: autobind).
    Unnamed,
}

/// Parses a sockaddr_un of `raw.len()` bytes (EINVAL as Linux's
/// unix_validate_addr: too short or long, or not AF_UNIX).
pub fn parse(raw: &[u8]) -> KResult<Target> {
    if raw.len() < 2 || raw.len() > 2 + SUN_PATH {
        return Err(Errno::EINVAL);
    }
    if u16::from_le_bytes([raw[0], raw[1]]) != AF_UNIX {
        return Err(Errno::EINVAL);
    }
    let path = &raw[2..];
    match path.first() {
        None => Ok(Target::Unnamed),
        Some(0) => Ok(Target::Abstract(path[1..].to_vec())),
        Some(_) => {
            let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
            Ok(Target::Path(path[..end].to_vec()))
        }
    }
}

impl UnixAddr {
    /// The sockaddr_un getsockname returns: the family, then the path and
    /// its NUL, or the abstract name with its leading NUL.
    pub fn to_sockaddr(&self) -> Vec<u8> {
        let mut v = AF_UNIX.to_le_bytes().to_vec();
        match self {
            UnixAddr::Path(p, _) => {
                v.extend_from_slice(p);
                v.push(0);
            }
            UnixAddr::Abstract(n) => {
                v.push(0);
                v.extend_from_slice(n);
            }
        }
        v
    }

    /// As /proc/net/unix prints it: the path, or '@' for the NUL of an
    /// abstract name (and for NULs inside it).
    pub fn proc_name(&self) -> Vec<u8> {
        match self {
            UnixAddr::Path(p, _) => p.clone(),
            UnixAddr::Abstract(n) => {
                let mut v = alloc::vec![b'@'];
                v.extend(n.iter().map(|&b| if b == 0 { b'@' } else { b }));
                v
            }
        }
    }
}

/// The unnamed address (family only).
pub fn unnamed() -> Vec<u8> {
    AF_UNIX.to_le_bytes().to_vec()
}

/// Bound sockets, by path inode and by abstract name.
struct Names {
    by_ino: BTreeMap<Ino, Weak<UnixSocket>>,
    /// Keyed by (socket type, name): Linux hashes abstract names with
    /// the type, so each type has its own namespace.
    abstract_: BTreeMap<(u32, Vec<u8>), Weak<UnixSocket>>,
    next_auto: u32,
}

static NAMES: Mutex<Names> = Mutex::new(Names {
    by_ino: BTreeMap::new(),
    abstract_: BTreeMap::new(),
    next_auto: 0,
});

/// Where a socket path's tmpfs walk starts, and the path it walks (a
/// relative path from an ext4 cwd as the absolute path it names).
/// Sockets on a disk are not there yet (ENOENT).
fn start_of(path: &[u8], follow: bool) -> KResult<(Ino, Cow<'_, [u8]>)> {
    crate::syscall::fs::tmpfs_start(crate::syscall::fs::AT_FDCWD, path, follow)
}

/// Binds `sock` to `t`: a path makes a socket inode (EADDRINUSE if the
/// name exists), an abstract name must be free, unnamed picks a free
/// 5-hex-digit abstract name (autobind).
pub fn bind(sock: &Arc<UnixSocket>, t: Target) -> KResult<UnixAddr> {
    match t {
        Target::Path(p) => {
            let umask = crate::proc::sched::current().fs.lock().umask;
            let (start, walked) = start_of(&p, false)?;
            let ino = crate::fs::with(|fs| -> KResult<Ino> {
                let (dir, name) = fs.lookup_parent(start, &walked)?;
                if name.is_empty() {
                    return Err(Errno::EINVAL);
                }
                let ino = fs
                    .mknod(
                        dir,
                        &name,
                        FileType::Socket.mode_bits() | (0o777 & !umask),
                        0,
                    )
                    .map_err(|e| {
                        if e == Errno::EEXIST {
                            Errno::EADDRINUSE
                        } else {
                            e
                        }
                    })?;
                // The bound socket holds its inode, as Linux holds the
                // path: unlinked, it is unreachable but not reused.
                fs.retain(ino)?;
                Ok(ino)
            })?;
            NAMES.lock().by_ino.insert(ino, Arc::downgrade(sock));
            Ok(UnixAddr::Path(p, ino))
        }
        Target::Abstract(n) => {
            let mut names = NAMES.lock();
            let k = (sock.ty, n);
            if names.abstract_.get(&k).is_some_and(held) {
                return Err(Errno::EADDRINUSE);
            }
            names.abstract_.insert(k.clone(), Arc::downgrade(sock));
            Ok(UnixAddr::Abstract(k.1))
        }
        Target::Unnamed => {
            let mut names = NAMES.lock();
            for _ in 0..0x10_0000 {
                names.next_auto = (names.next_auto + 1) & 0xf_ffff;
                let k = (
                    sock.ty,
                    alloc::format!("{:05x}", names.next_auto).into_bytes(),
                );
                if !names.abstract_.get(&k).is_some_and(held) {
                    names.abstract_.insert(k.clone(), Arc::downgrade(sock));
                    return Ok(UnixAddr::Abstract(k.1));
                }
            }
            Err(Errno::ENOSPC)
        }
    }
}

/// Whether a name's entry still belongs to a live socket.
fn held(w: &Weak<UnixSocket>) -> bool {
    w.upgrade().is_some_and(|s| !s.is_released())
}

/// Frees the name `a` of `sock` (released).
pub fn unbind(a: &UnixAddr, sock: &UnixSocket) {
    let mut names = NAMES.lock();
    let ours = |w: &Weak<UnixSocket>| core::ptr::eq(w.as_ptr(), sock);
    match a {
        UnixAddr::Path(_, ino) => {
            if names.by_ino.get(ino).is_some_and(ours) {
                names.by_ino.remove(ino);
            }
            drop(names);
            let _ = crate::fs::with(|fs| fs.release(*ino));
        }
        UnixAddr::Abstract(n) => {
            let k = (sock.ty, n.clone());
            if names.abstract_.get(&k).is_some_and(ours) {
                names.abstract_.remove(&k);
            }
        }
    }
}

/// The socket bound to `t`: ENOENT for a path that does not exist,
/// ECONNREFUSED for one that is no bound socket or for an abstract name
/// no socket of type `ty` holds.
pub fn lookup(t: &Target, ty: u32) -> KResult<Arc<UnixSocket>> {
    let w = match t {
        Target::Path(p) => {
            let (start, walked) = start_of(p, true)?;
            let ino = crate::fs::with(|fs| -> KResult<Ino> {
                let ino = fs.lookup(start, &walked, true)?;
                if fs.file_type(ino)? != FileType::Socket {
                    return Err(Errno::ECONNREFUSED);
                }
                Ok(ino)
            })?;
            NAMES.lock().by_ino.get(&ino).cloned()
        }
        Target::Abstract(n) => NAMES.lock().abstract_.get(&(ty, n.clone())).cloned(),
        Target::Unnamed => return Err(Errno::EINVAL),
    };
    w.and_then(|w| w.upgrade())
        .filter(|s| !s.is_released())
        .ok_or(Errno::ECONNREFUSED)
}

/// /proc/net/unix's form of a raw sockaddr_un (an accepted socket shows
/// its listener's name).
pub fn proc_name_of(raw: &[u8]) -> Vec<u8> {
    match parse(raw) {
        Ok(Target::Path(p)) => p,
        Ok(Target::Abstract(n)) => UnixAddr::Abstract(n).proc_name(),
        _ => Vec::new(),
    }
}
