//! File and directory syscalls (open(2), read(2), stat(2), getdents64(2),
//! …) over the tmpfs root, pipes, devices and /proc.

use abi::{Errno, KResult};
use alloc::borrow::Cow;
use alloc::sync::Arc;
use alloc::vec::Vec;
use vfs::{FileType, Ino, Stat, Walked, ROOT_INO};

use crate::fs::cwd::{Cwd, Dir};
use crate::fs::ext4::Walk;
use crate::fs::file::{self, Kind, OpenFile};
use crate::fs::mount::{self, Mount};
use crate::fs::{self as kfs, dev, perm, procfs, rootdisk};
use crate::proc::sched::current;
use crate::uaccess;

pub const AT_FDCWD: i64 = -100;
pub const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
pub const AT_REMOVEDIR: u64 = 0x200;
pub const AT_EMPTY_PATH: u64 = 0x1000;
const PATH_MAX: usize = 4096;
const IO_CHUNK: usize = 1 << 20;

/// A resolved name: a tmpfs inode, a /proc entry, what a followed
/// `/proc/PID/fd/N` link names (an open file, which may have no name), or
/// an inode of a mounted ext4 file system.
pub(crate) enum Node {
    Ino(Ino),
    Proc(Vec<u8>),
    Fd(Arc<OpenFile>),
    Ext(Arc<Mount>, u32),
}

/// Walks that leave a mounted file system and come back (`..` above its
/// root, absolute symlinks) restart from the root at most this often.
const MAX_RESTARTS: u32 = 8;

fn fd_file(fd: u64) -> KResult<Arc<OpenFile>> {
    crate::proc::sched::with_current(|p| p.file_at(fd as i32))
}

pub(super) fn read_path(ptr: u64) -> KResult<Vec<u8>> {
    let p = uaccess::read_cstr(ptr, PATH_MAX)?;
    if p.is_empty() {
        return Err(Errno::ENOENT);
    }
    Ok(p)
}

/// The directory a relative path starts from (the root for an absolute
/// one).
pub(crate) fn start(dirfd: i64, path: &[u8]) -> KResult<Dir> {
    if path.first() == Some(&b'/') {
        return Ok(Dir::Tmpfs(ROOT_INO));
    }
    if dirfd == AT_FDCWD {
        return Ok(current().fs.lock().cwd.dir());
    }
    let f = fd_file(dirfd as u64)?;
    if let Kind::Ext(m, i) = &f.kind {
        if m.fs.file_type(*i)? != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        return Ok(Dir::Ext(m.clone(), *i));
    }
    let ino = f.ino().ok_or(Errno::ENOTDIR)?;
    if kfs::with(|fs| fs.file_type(ino))? != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    Ok(Dir::Tmpfs(ino))
}

/// Where a tmpfs walk of `path` starts, and the path it walks. From an
/// ext4 directory that is where the path leaves the mount, as the
/// absolute path the ext4 walk hands back; a path that stays on the disk
/// is ENOENT for the tmpfs operation that asked.
pub(crate) fn tmpfs_start(dirfd: i64, path: &[u8], follow: bool) -> KResult<(Ino, Cow<'_, [u8]>)> {
    match start(dirfd, path)? {
        Dir::Tmpfs(i) => Ok((i, Cow::Borrowed(path))),
        Dir::Ext(m, i) => match m.fs.walk(i, path, follow, &m.target)? {
            Walk::Leave(abs) => Ok((ROOT_INO, Cow::Owned(abs))),
            Walk::Ino(_) => Err(Errno::ENOENT),
        },
    }
}

/// `path` without empty and `.` components ("/a/b", or "" for "/").
fn normalize(path: &[u8]) -> Vec<u8> {
    let mut norm: Vec<u8> = Vec::new();
    for c in path
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
    {
        norm.push(b'/');
        norm.extend_from_slice(c);
    }
    norm
}

/// The directory /proc is mounted on, in the tmpfs.
fn proc_mount() -> Option<Ino> {
    kfs::with(|fs| fs.lookup(ROOT_INO, b"/proc", false)).ok()
}

/// The tmpfs directories other file systems are mounted on: /proc and
/// the ext4 mounts.
fn mount_points() -> Vec<Ino> {
    let mut v = mount::points();
    v.extend(proc_mount());
    v
}

/// Resolves `path` in the tmpfs from `start`; a walk that enters /proc
/// (through a symlink such as /dev/fd, or `..`) ends as a /proc path, one
/// that enters an ext4 mount goes on in that file system. A relative walk
/// from a mount point (a cwd set by chdir to a mount's root) starts in
/// the mounted file system.
fn walk(start: Ino, path: &[u8], follow: bool, depth: u32) -> KResult<Node> {
    let into = if path.first() == Some(&b'/') {
        rootdisk::covering(path)
    } else {
        mount::on(start)
    };
    if let Some(m) = into {
        let root = m.fs.root();
        return ext_walk(m, root, path, follow, depth);
    }
    let points = mount_points();
    let me = perm::me();
    let who = perm::caller(&me);
    match kfs::with(|fs| fs.walk_as(Some(&who), start, path, follow, &points))? {
        Walked::Ino(ino) => Ok(Node::Ino(ino)),
        Walked::Mount { at, rest } => match mount::on(at) {
            Some(m) => {
                let root = m.fs.root();
                ext_walk(m, root, &rest, follow, depth)
            }
            None => Ok(proc_node(normalize(&rest), follow)),
        },
    }
}

/// Resolves `path` inside mounted file system `m` from its directory
/// `start`; a walk that leaves it resumes from the global root.
fn ext_walk(m: Arc<Mount>, start: u32, path: &[u8], follow: bool, depth: u32) -> KResult<Node> {
    match m.fs.walk(start, path, follow, &m.target)? {
        Walk::Ino(i) => Ok(Node::Ext(m, i)),
        Walk::Leave(abs) => {
            if depth >= MAX_RESTARTS {
                return Err(Errno::ELOOP);
            }
            resolve_depth(AT_FDCWD, &abs, follow, depth + 1)
        }
    }
}

/// A /proc path as a node: an fd link, when followed, is its open file.
fn proc_node(rest: Vec<u8>, follow: bool) -> Node {
    match procfs::fd_link(&rest) {
        Some(f) if follow => Node::Fd(f),
        _ => Node::Proc(rest),
    }
}

fn proc_rest(dirfd: i64, path: &[u8]) -> Option<Vec<u8>> {
    // A path in /proc has a component "proc" after a slash, whatever
    // `.` and `//` it also has: most paths are ruled out by this scan,
    // before the copy and normalisation below (every open, stat and
    // exec asks, some twice).
    let may_name_proc = |p: &[u8]| p.windows(5).any(|w| w == b"/proc");
    let abs = if path.first() == Some(&b'/') {
        if !may_name_proc(path) {
            return None;
        }
        path.to_vec()
    } else if dirfd == AT_FDCWD {
        // From an ext4 cwd, /proc is reached only by leaving the mount,
        // which the walk does.
        let Dir::Tmpfs(cwd) = current().fs.lock().cwd.dir() else {
            return None;
        };
        let mut p = kfs::with(|fs| fs.path_of(cwd)).ok()?;
        if p.last() != Some(&b'/') {
            p.push(b'/');
        }
        p.extend_from_slice(path);
        if !may_name_proc(&p) {
            return None;
        }
        p
    } else {
        return None;
    };
    let norm = normalize(&abs);
    if norm == b"/proc" {
        Some(Vec::new())
    } else {
        norm.strip_prefix(b"/proc/").map(|r| {
            let mut v = b"/".to_vec();
            v.extend_from_slice(r);
            v
        })
    }
}

/// `/proc/self/exe` and `/proc/PID/exe` are symlinks to the program's
/// file: its path, if `path` names one of them.
pub(crate) fn proc_exe_target(dirfd: i64, path: &[u8]) -> Option<Vec<u8>> {
    let rest = proc_rest(dirfd, path)?;
    let pid = rest.strip_prefix(b"/")?.strip_suffix(b"/exe")?;
    let p = if pid == b"self" {
        current()
    } else {
        crate::proc::lookup(core::str::from_utf8(pid).ok()?.parse().ok()?)?
    };
    let exe = p.info.lock().exe.clone();
    Some(exe)
}

pub(crate) fn resolve(dirfd: i64, path: &[u8], follow: bool) -> KResult<Node> {
    resolve_depth(dirfd, path, follow, 0)
}

fn resolve_depth(dirfd: i64, path: &[u8], follow: bool, depth: u32) -> KResult<Node> {
    let start = match start(dirfd, path)? {
        Dir::Ext(m, dir) => return ext_walk(m, dir, path, follow, depth),
        Dir::Tmpfs(i) => i,
    };
    if follow {
        if let Some(exe) = proc_exe_target(dirfd, path) {
            if depth >= MAX_RESTARTS {
                return Err(Errno::ELOOP);
            }
            return resolve_depth(AT_FDCWD, &exe, true, depth + 1);
        }
    }
    if let Some(rest) = proc_rest(dirfd, path) {
        return Ok(proc_node(rest, follow));
    }
    walk(start, path, follow, depth)
}

/// That the user path at `path` names something (following a last
/// symlink if `follow`), with resolve's errors (ENOENT, ENOTDIR, EFAULT…),
/// and whether it is in /proc.
pub(super) fn lookup_user_path(path: u64, follow: bool) -> KResult<bool> {
    let p = read_path(path)?;
    Ok(!matches!(resolve(AT_FDCWD, &p, follow)?, Node::Ino(_)))
}

/// That `fd` is open (EBADF otherwise).
pub(super) fn check_fd(fd: u64) -> KResult<()> {
    fd_file(fd).map(|_| ())
}

fn proc_stat(rest: &[u8]) -> KResult<Stat> {
    let dir = procfs::is_dir(rest);
    // fd links (unfollowed) and exe are symlinks, lrwx------ as on Linux.
    let link = procfs::fd_link(rest).is_some() || rest.ends_with(b"/exe");
    if !dir && !link && matches!(procfs::open(rest), Err(Errno::ENOENT)) {
        return Err(Errno::ENOENT);
    }
    Ok(Stat {
        dev: 3,
        ino: 0x1000 + rest.len() as u64,
        nlink: if dir { 2 } else { 1 },
        mode: if dir {
            0o040555
        } else if link {
            0o120700
        } else {
            0o100444
        },
        blksize: 4096,
        ..Stat::default()
    })
}

fn stat_node(n: &Node) -> KResult<Stat> {
    match n {
        Node::Ino(i) => kfs::with(|fs| fs.stat(*i)),
        Node::Proc(rest) => proc_stat(rest),
        Node::Fd(f) => file_stat(f),
        Node::Ext(m, i) => m.fs.stat(*i),
    }
}

fn file_stat(f: &OpenFile) -> KResult<Stat> {
    match &f.kind {
        Kind::Inode(i) => kfs::with(|fs| fs.stat(*i)),
        Kind::PipeRead(_) | Kind::PipeWrite(_) => Ok(Stat {
            mode: 0o010600,
            nlink: 1,
            blksize: 4096,
            ino: 0x7000,
            dev: 9,
            ..Stat::default()
        }),
        Kind::Tty => Ok(Stat {
            mode: 0o020620,
            nlink: 1,
            rdev: vfs::devnum::makedev(5, 1) as u64,
            blksize: 1024,
            ino: 0x6001,
            dev: 6,
            ..Stat::default()
        }),
        Kind::Null | Kind::Zero | Kind::Random => Ok(Stat {
            mode: 0o020666,
            nlink: 1,
            rdev: vfs::devnum::makedev(1, 3) as u64,
            blksize: 4096,
            ino: 0x6002,
            dev: 6,
            ..Stat::default()
        }),
        Kind::Ext(m, i) => m.fs.stat(*i),
        // Linux: a block special file's size is 0 (BLKGETSIZE64 tells).
        Kind::Block(d) => Ok(Stat {
            mode: 0o060660,
            nlink: 1,
            rdev: d.rdev as u64,
            blksize: 4096,
            ino: 0x6100 + d.rdev as u64,
            dev: 6,
            ..Stat::default()
        }),
        Kind::Proc(_) | Kind::ProcControl(..) => Ok(Stat {
            mode: 0o100644,
            nlink: 1,
            blksize: 4096,
            dev: 3,
            ..Stat::default()
        }),
        Kind::ProcDir(_) => Ok(Stat {
            mode: 0o040555,
            nlink: 2,
            blksize: 4096,
            dev: 3,
            ..Stat::default()
        }),
        // Linux: sockfs, S_IFSOCK 0777, the socket's inode number.
        Kind::Socket(s) => Ok(Stat {
            mode: 0o140777,
            nlink: 1,
            blksize: 4096,
            ino: s.ino(),
            dev: 8,
            ..Stat::default()
        }),
        // Linux: an anonymous inode ("anon_inode:[io_uring]", …), mode 0600.
        Kind::IoUring(_)
        | Kind::EventFd(_)
        | Kind::Epoll(_)
        | Kind::TimerFd(_)
        | Kind::SignalFd(_) => Ok(Stat {
            mode: 0o600,
            nlink: 1,
            blksize: 4096,
            ino: 0x7100,
            dev: 0xe,
            ..Stat::default()
        }),
    }
}

/// read(2).
pub fn read(fd: u64, buf: u64, len: u64) -> KResult<u64> {
    let f = fd_file(fd)?;
    if let Some(s) = f.socket() {
        return super::socket::read_iov(&f, &**s, &[(buf, len as usize)]);
    }
    let mut len = (len as usize).min(IO_CHUNK);
    // A signalfd takes its signals as it reads: a bad buffer must fail
    // before that, or they would be lost.
    if matches!(f.kind, Kind::PipeRead(_) | Kind::Tty | Kind::SignalFd(_)) {
        uaccess::check_writable(buf, len)?;
    }
    // A blocked reader holds no heap buffer of the length it asked for
    // (many blocked 1 MiB reads would exhaust the heap): a pipe read waits
    // first, then takes what is there. A small one blocks in the read
    // itself, on the stack buffer below: one wait, not two.
    if len > SMALL_IO {
        len = len.min(f.readable_now()?);
    }
    if matches!(f.kind, Kind::Tty) {
        // Linux's line discipline holds 4 KiB: no tty read returns more.
        len = len.min(TTY_READ_MAX);
    }
    with_io_buf(len, |kbuf| {
        let n = f.read(kbuf)?;
        uaccess::copy_out(buf, &kbuf[..n])?;
        Ok(n as u64)
    })
}

/// Runs `f` on a zeroed kernel buffer of `len` bytes. Small transfers (a
/// byte through a pipe, a tty line) stay on the stack: the heap round
/// trip costs more than the copy. The tiniest get a buffer of their own,
/// as zeroing 256 bytes is 16 stores, a tenth of a one-byte pipe read.
#[inline(always)]
fn with_io_buf(len: usize, f: impl FnOnce(&mut [u8]) -> KResult<u64>) -> KResult<u64> {
    if len <= TINY_IO {
        f(&mut [0u8; TINY_IO][..len])
    } else if len <= SMALL_IO {
        f(&mut [0u8; SMALL_IO][..len])
    } else {
        f(&mut uaccess::kernel_buf(len)?)
    }
}

/// Most a tty read returns (N_TTY_BUF_SIZE).
const TTY_READ_MAX: usize = 4096;

/// Reads and writes up to this size use a stack buffer.
const SMALL_IO: usize = 256;
/// ... and up to this size a smaller one.
const TINY_IO: usize = 16;

/// A pipe write copies user data through a kernel buffer this large.
const PIPE_CHUNK: usize = vfs::pipe::PIPE_CAPACITY;

/// write(2).
pub fn write(fd: u64, buf: u64, len: u64) -> KResult<u64> {
    let f = fd_file(fd)?;
    if !f.writable() {
        return Err(Errno::EBADF);
    }
    if let Some(s) = f.socket() {
        return super::socket::write_iov(&f, &**s, &[(buf, len as usize)]);
    }
    if matches!(f.kind, Kind::PipeWrite(_)) && len as usize > PIPE_CHUNK {
        return write_pipe_chunks(&f, buf, len as usize);
    }
    let len = (len as usize).min(IO_CHUNK);
    if len <= SMALL_IO {
        return with_io_buf(len, |small| {
            uaccess::copy_in(buf, small)?;
            f.write(small).map(|n| n as u64)
        });
    }
    let data = uaccess::read_vec(buf, len)?;
    f.write(&data).map(|n| n as u64)
}

/// A pipe write longer than [`PIPE_CHUNK`]: Linux writes all of it
/// (blocking as often as needed), so it goes in bounded chunks until done
/// or one comes up short (non-blocking, a signal, EPIPE, a bad address),
/// and then returns what was written if anything was.
fn write_pipe_chunks(f: &OpenFile, buf: u64, len: usize) -> KResult<u64> {
    let mut chunk = uaccess::kernel_buf(PIPE_CHUNK)?;
    let mut done = 0;
    while done < len {
        let n = (len - done).min(PIPE_CHUNK);
        let r = uaccess::copy_in(buf + done as u64, &mut chunk[..n])
            .and_then(|()| f.write(&chunk[..n]));
        match r {
            Ok(w) => {
                done += w;
                if w < n {
                    break;
                }
            }
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(done as u64)
}

fn iovecs(iov: u64, cnt: u64) -> KResult<Vec<(u64, u64)>> {
    if cnt > 1024 {
        return Err(Errno::EINVAL);
    }
    let raw = uaccess::read_vec(iov, cnt as usize * 16)?;
    Ok(raw
        .chunks(16)
        .map(|c| {
            (
                u64::from_le_bytes(c[..8].try_into().unwrap_or([0; 8])),
                u64::from_le_bytes(c[8..].try_into().unwrap_or([0; 8])),
            )
        })
        .collect())
}

/// readv(2): stops at the first short read.
pub fn readv(fd: u64, iov: u64, cnt: u64) -> KResult<u64> {
    let f = fd_file(fd)?;
    if let Some(s) = f.socket() {
        // One receive for all the iovecs (a datagram is not split).
        let v: Vec<(u64, usize)> = iovecs(iov, cnt)?
            .into_iter()
            .map(|(b, l)| (b, l as usize))
            .collect();
        return super::socket::read_iov(&f, &**s, &v);
    }
    let mut total = 0;
    for (base, len) in iovecs(iov, cnt)? {
        if len == 0 {
            continue;
        }
        let n = match read(fd, base, len) {
            Ok(n) => n,
            Err(e) if total == 0 => return Err(e),
            Err(_) => break,
        };
        total += n;
        if n < len {
            break;
        }
    }
    Ok(total)
}

/// writev(2). Up to [`PIPE_CHUNK`] bytes are gathered first, so a pipe
/// write of up to PIPE_BUF stays atomic; longer ones go iovec by iovec.
/// As Linux, a bad iovec ends the write: EFAULT if it is the first, else
/// the bytes written before it; except that a pipe fails with EFAULT
/// (Linux drops the page being filled when a copy into it faults).
pub fn writev(fd: u64, iov: u64, cnt: u64) -> KResult<u64> {
    let f = fd_file(fd)?;
    if !f.writable() {
        return Err(Errno::EBADF);
    }
    let vecs = iovecs(iov, cnt)?;
    if let Some(s) = f.socket() {
        let v: Vec<(u64, usize)> = vecs.iter().map(|&(b, l)| (b, l as usize)).collect();
        return super::socket::write_iov(&f, &**s, &v);
    }
    let total = vecs
        .iter()
        .try_fold(0u64, |a, &(_, l)| a.checked_add(l))
        .filter(|&t| t <= isize::MAX as u64)
        .ok_or(Errno::EINVAL)?;
    if total as usize <= PIPE_CHUNK {
        let mut data = Vec::new();
        data.try_reserve_exact(total as usize)
            .map_err(|_| Errno::ENOMEM)?;
        for (base, len) in vecs {
            let start = data.len();
            data.resize(start + len as usize, 0);
            if uaccess::copy_in(base, &mut data[start..]).is_err() {
                data.truncate(start);
                if start == 0 || matches!(f.kind, Kind::PipeWrite(_)) {
                    return Err(Errno::EFAULT);
                }
                break;
            }
        }
        return f.write(&data).map(|n| n as u64);
    }
    let mut done = 0;
    for (base, len) in vecs {
        if len == 0 {
            continue;
        }
        let n = match write(fd, base, len) {
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        done += n;
        if n < len {
            break;
        }
    }
    Ok(done)
}

/// pread64(2).
pub fn pread(fd: u64, buf: u64, len: u64, off: u64) -> KResult<u64> {
    if (off as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    let f = fd_file(fd)?;
    if !f.readable() {
        return Err(Errno::EBADF);
    }
    let mut kbuf = uaccess::kernel_buf((len as usize).min(IO_CHUNK))?;
    let n = f.pread(&mut kbuf, off)?;
    uaccess::copy_out(buf, &kbuf[..n])?;
    Ok(n as u64)
}

/// pwrite64(2).
pub fn pwrite(fd: u64, buf: u64, len: u64, off: u64) -> KResult<u64> {
    if (off as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    let f = fd_file(fd)?;
    let data = uaccess::read_vec(buf, (len as usize).min(IO_CHUNK))?;
    f.pwrite(&data, off).map(|n| n as u64)
}

/// lseek(2).
pub fn lseek(fd: u64, off: i64, whence: u64) -> KResult<u64> {
    let f = fd_file(fd)?;
    let size = match &f.kind {
        Kind::Inode(i) => kfs::with(|fs| fs.stat(*i))?.size,
        Kind::Proc(d) | Kind::ProcControl(d, _) => d.len() as i64,
        Kind::ProcDir(_) => 0,
        Kind::Block(d) => d.size() as i64,
        Kind::Ext(m, i) => m.fs.stat(*i)?.size,
        Kind::Null | Kind::Zero | Kind::Random => return Ok(0),
        _ => return Err(Errno::ESPIPE),
    };
    let mut pos = f.pos.lock();
    let new = match whence {
        0 => off,
        1 => (*pos as i64).checked_add(off).ok_or(Errno::EOVERFLOW)?,
        2 => size.checked_add(off).ok_or(Errno::EOVERFLOW)?,
        _ => return Err(Errno::EINVAL),
    };
    if new < 0 {
        return Err(Errno::EINVAL);
    }
    *pos = new as u64;
    Ok(new as u64)
}

fn device_kind(rdev: u64) -> KResult<Kind> {
    let (ma, mi) = (
        vfs::devnum::major(rdev as u32),
        vfs::devnum::minor(rdev as u32),
    );
    match (ma, mi) {
        (dev::MEM_MAJOR, dev::NULL) => Ok(Kind::Null),
        (dev::MEM_MAJOR, dev::ZERO) => Ok(Kind::Zero),
        (dev::MEM_MAJOR, dev::RANDOM) | (dev::MEM_MAJOR, dev::URANDOM) => Ok(Kind::Random),
        (dev::TTY_MAJOR, dev::TTY) | (dev::TTY_MAJOR, dev::CONSOLE) => Ok(Kind::Tty),
        _ => Err(Errno::ENXIO),
    }
}

/// openat(2).
pub fn openat(dirfd: i64, path: u64, flags: u64, mode: u64) -> KResult<u64> {
    let path = read_path(path)?;
    let flags = flags as u32;
    let me = current();
    let path = match proc_exe_target(dirfd, &path) {
        Some(exe) if flags & file::O_NOFOLLOW == 0 => exe,
        _ => path,
    };
    let follow = flags & file::O_NOFOLLOW == 0;
    if let Some(kind) = open_in_mount(dirfd, &path, flags, mode as u32, follow)? {
        let f = OpenFile::new(kind, flags);
        let fd = me.files().lock().insert(f, flags & file::O_CLOEXEC != 0)?;
        return Ok(fd as u64);
    }
    let mut proc_path = proc_rest(dirfd, &path);
    let mut found = None;
    if proc_path.is_none() {
        let (start, path) = tmpfs_start(dirfd, &path, follow)?;
        let umask = me.fs.lock().umask;
        let points = mount_points();
        let cred = me.cred();
        let who = perm::caller(&cred);
        // (what the walk found, whether this open created it)
        let walked = kfs::with(|fs| -> KResult<(Walked, bool)> {
            match fs.walk_as(Some(&who), start, &path, follow, &points) {
                Ok(w) => {
                    if flags & file::O_CREAT != 0 && flags & file::O_EXCL != 0 {
                        return Err(Errno::EEXIST);
                    }
                    Ok((w, false))
                }
                Err(Errno::ENOENT) if flags & file::O_CREAT != 0 => {
                    let (dir, name) = fs.lookup_parent_as(Some(&who), start, &path)?;
                    if name.is_empty() || path.last() == Some(&b'/') {
                        return Err(Errno::EISDIR);
                    }
                    perm::may_change_dir(&cred, &fs.stat(dir)?)?;
                    fs.create(dir, &name, (mode as u32 & 0o7777) & !umask)
                        .map(|i| (Walked::Ino(i), true))
                }
                Err(e) => Err(e),
            }
        })?;
        match walked {
            (Walked::Ino(ino), created) => {
                // A file this open created is opened whatever its mode.
                if !created {
                    let st = kfs::with(|fs| fs.stat(ino))?;
                    perm::check(&cred, &st, perm::open_rights(flags))?;
                }
                found = Some(ino)
            }
            // open_in_mount took the paths into ext4 mounts.
            (Walked::Mount { at, .. }, _) if mount::on(at).is_some() => return Err(Errno::ENOENT),
            (Walked::Mount { rest, .. }, _) => proc_path = Some(normalize(&rest)),
        }
    }
    let kind = if let Some(rest) = proc_path {
        // /proc/PID/fd/N (or /dev/fd/N): a new open file for the same
        // object, with these flags (O_CREAT means nothing; O_TRUNC
        // truncates a regular file opened for writing).
        if let Some(f) = procfs::fd_link(&rest).filter(|_| follow) {
            let f = f.reopen(flags)?;
            if let Some(ino) = f.ino() {
                let ft = kfs::with(|fs| fs.file_type(ino))?;
                if flags & file::O_TRUNC != 0
                    && ft == FileType::Regular
                    && flags & file::O_ACCMODE != file::O_RDONLY
                {
                    kfs::with(|fs| fs.truncate(ino, 0))?;
                }
            }
            let fd = me.files().lock().insert(f, flags & file::O_CLOEXEC != 0)?;
            return Ok(fd as u64);
        }
        let kind = procfs::open(&rest)?;
        // Only control files take writes (O_CREAT/O_TRUNC mean nothing).
        let writes = flags & file::O_ACCMODE != file::O_RDONLY;
        if writes && !matches!(kind, Kind::ProcControl(..)) {
            return Err(Errno::EACCES);
        }
        kind
    } else {
        let ino = found.ok_or(Errno::ENOENT)?;
        let st = kfs::with(|fs| fs.stat(ino))?;
        let ft = FileType::from_mode(st.mode).ok_or(Errno::EIO)?;
        if flags & file::O_DIRECTORY != 0 && ft != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        if ft == FileType::Symlink && flags & file::O_PATH == 0 {
            return Err(Errno::ELOOP);
        }
        if ft == FileType::Directory && flags & file::O_ACCMODE != file::O_RDONLY {
            return Err(Errno::EISDIR);
        }
        if ft == FileType::CharDevice && flags & file::O_PATH == 0 {
            device_kind(st.rdev)?
        } else if ft == FileType::BlockDevice && flags & file::O_PATH == 0 {
            let disk = crate::block::by_rdev(st.rdev as u32)?;
            if disk.readonly() && flags & file::O_ACCMODE != file::O_RDONLY {
                return Err(Errno::EROFS);
            }
            Kind::Block(disk)
        } else {
            if flags & file::O_TRUNC != 0
                && ft == FileType::Regular
                && flags & file::O_ACCMODE != file::O_RDONLY
            {
                kfs::with(|fs| fs.truncate(ino, 0))?;
            }
            Kind::Inode(ino)
        }
    };
    let f = OpenFile::new(kind, flags);
    let fd = me.files().lock().insert(f, flags & file::O_CLOEXEC != 0)?;
    Ok(fd as u64)
}

/// openat(2) of a path that leads into a mounted ext4 file system (None:
/// it does not, or nothing is mounted).
fn open_in_mount(
    dirfd: i64,
    path: &[u8],
    flags: u32,
    mode: u32,
    follow: bool,
) -> KResult<Option<Kind>> {
    if mount::points().is_empty() {
        return Ok(None);
    }
    let mode = mode & 0o7777 & !current().fs.lock().umask;
    // The lookup and the create are two steps, each under the file
    // system's lock but not one: another process can create the name
    // between them (two sqlite3 processes opening the same `-shm` file).
    // Without O_EXCL, O_CREAT must then open that file, as it would have
    // a moment later, so a create that finds the name taken looks again.
    let mut tries = 0;
    let node = loop {
        match resolve(dirfd, path, follow) {
            Ok(n) => break n,
            Err(Errno::ENOENT) if flags & file::O_CREAT != 0 => {
                let Some((m, dir, name)) = ext_parent(dirfd, path)? else {
                    return Ok(None);
                };
                if name == b"." || name == b".." || path.last() == Some(&b'/') {
                    return Err(Errno::EISDIR);
                }
                perm::may_change_dir(&perm::me(), &m.fs.stat(dir)?)?;
                crate::inject::delay(crate::inject::Point::Create);
                match m.fs.create(dir, &name, mode) {
                    Ok(ino) => return Ok(Some(Kind::Ext(m, ino))),
                    // Created and unlinked again between each of our
                    // looks, over and over: give up as Linux's bounded
                    // retry does.
                    Err(Errno::EEXIST) if flags & file::O_EXCL == 0 && tries < 8 => tries += 1,
                    Err(e) => return Err(e),
                }
            }
            Err(e) if ext_parent(dirfd, path).ok().flatten().is_some() => return Err(e),
            Err(_) => return Ok(None),
        }
    };
    let Node::Ext(m, ino) = node else {
        return Ok(None);
    };
    if flags & file::O_CREAT != 0 && flags & file::O_EXCL != 0 {
        return Err(Errno::EEXIST);
    }
    perm::check(&perm::me(), &m.fs.stat(ino)?, perm::open_rights(flags))?;
    let ft = m.fs.file_type(ino)?;
    if flags & file::O_DIRECTORY != 0 && ft != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    if ft == FileType::Symlink && flags & file::O_PATH == 0 {
        return Err(Errno::ELOOP);
    }
    let writes = flags & file::O_ACCMODE != file::O_RDONLY;
    if writes && flags & file::O_PATH == 0 {
        if ft == FileType::Directory {
            return Err(Errno::EISDIR);
        }
        if m.fs.readonly {
            return Err(Errno::EROFS);
        }
    }
    if writes && flags & file::O_TRUNC != 0 && ft == FileType::Regular {
        m.fs.truncate(ino, 0)?;
    }
    if ft.is_device() && flags & file::O_PATH == 0 {
        // Device nodes on a disk: not opened through it yet.
        return Err(Errno::ENXIO);
    }
    Ok(Some(Kind::Ext(m, ino)))
}

/// A directory of a mounted ext4 file system and a name in it.
type ExtParent = (Arc<Mount>, u32, Vec<u8>);

/// The ext4 directory that would hold the last component of `path`, with
/// that name, if it is in a mounted file system.
fn ext_parent(dirfd: i64, path: &[u8]) -> KResult<Option<ExtParent>> {
    if mount::points().is_empty() {
        return Ok(None);
    }
    let (dir, name) = vfs::path::split_last(path);
    let dir_node = if dir.is_empty() {
        match start(dirfd, path)? {
            Dir::Ext(m, i) => Node::Ext(m, i),
            // A cwd set before a mount covered it: relative walks from
            // there enter the mount (`walk`).
            Dir::Tmpfs(i) => match mount::on(i) {
                Some(m) => {
                    let root = m.fs.root();
                    Node::Ext(m, root)
                }
                None => return Ok(None),
            },
        }
    } else {
        resolve(dirfd, dir, true)?
    };
    match dir_node {
        Node::Ext(m, i) => {
            if m.fs.file_type(i)? != FileType::Directory {
                return Err(Errno::ENOTDIR);
            }
            Ok(Some((m, i, name.to_vec())))
        }
        _ => Ok(None),
    }
}

/// close(2).
pub fn close(fd: u64) -> KResult<u64> {
    let f = current().files().lock().remove(fd as i32)?;
    drop(f);
    Ok(0)
}

/// dup(2).
pub fn dup(fd: u64) -> KResult<u64> {
    let files = current().files();
    let mut t = files.lock();
    let f = t.get(fd as i32)?;
    t.insert(f, false).map(|n| n as u64)
}

/// dup2(2) / dup3(2).
pub fn dup3(old: u64, new: u64, flags: u64, is_dup2: bool) -> KResult<u64> {
    let files = current().files();
    let mut t = files.lock();
    let f = t.get(old as i32)?;
    if old == new {
        return if is_dup2 { Ok(new) } else { Err(Errno::EINVAL) };
    }
    if flags & !(file::O_CLOEXEC as u64) != 0 {
        return Err(Errno::EINVAL);
    }
    let replaced = t.insert_at(new as i32, f, flags != 0)?;
    drop(t);
    drop(replaced);
    Ok(new)
}

/// pipe2(2).
pub fn pipe2(fds: u64, flags: u64) -> KResult<u64> {
    let flags = flags as u32;
    if flags & !(file::O_CLOEXEC | file::O_NONBLOCK | 0o40000) != 0 {
        return Err(Errno::EINVAL);
    }
    let p = crate::fs::pipe::Pipe::new();
    let r = OpenFile::new(
        Kind::PipeRead(p.clone()),
        file::O_RDONLY | (flags & file::O_NONBLOCK),
    );
    let w = OpenFile::new(
        Kind::PipeWrite(p),
        file::O_WRONLY | (flags & file::O_NONBLOCK),
    );
    let files = current().files();
    let mut t = files.lock();
    let cloexec = flags & file::O_CLOEXEC != 0;
    let rfd = t.insert(r, cloexec)?;
    let wfd = match t.insert(w, cloexec) {
        Ok(w) => w,
        Err(e) => {
            let _ = t.remove(rfd);
            return Err(e);
        }
    };
    drop(t);
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&rfd.to_le_bytes());
    b[4..].copy_from_slice(&wfd.to_le_bytes());
    if let Err(e) = uaccess::copy_out(fds, &b) {
        let mut t = files.lock();
        let _ = t.remove(rfd);
        let _ = t.remove(wfd);
        return Err(e);
    }
    Ok(0)
}

/// fcntl(2): F_DUPFD(_CLOEXEC), F_GETFD/F_SETFD, F_GETFL/F_SETFL, and
/// the record locks (F_GETLK/F_SETLK/F_SETLKW and their OFD forms, in
/// `fs::locks`).
pub fn fcntl(fd: u64, cmd: u64, arg: u64) -> KResult<u64> {
    let files = current().files();
    let mut t = files.lock();
    let f = t.get(fd as i32)?;
    match cmd {
        0 | 1030 if arg >= crate::proc::limits::nofile() as u64 => Err(Errno::EINVAL),
        0 | 1030 => t
            .insert_from(arg as usize, f, cmd == 1030)
            .map(|n| n as u64),
        1 => Ok(t.cloexec(fd as i32)? as u64),
        2 => t.set_cloexec(fd as i32, arg & 1 != 0).map(|_| 0),
        3 => Ok(f.flags() as u64),
        4 => {
            f.set_flags(arg as u32);
            Ok(0)
        }
        _ => {
            let owner = t.lock_owner();
            // The table's lock is not held while a lock request sleeps.
            drop(t);
            crate::fs::locks::fcntl(&f, owner, cmd, arg).unwrap_or(Err(Errno::EINVAL))
        }
    }
}

/// flock(2).
pub fn flock(fd: u64, op: u64) -> KResult<u64> {
    let f = fd_file(fd)?;
    if f.flags() & file::O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    crate::fs::locks::flock(&f, op)
}

/// ioctl(2): terminal requests on the console, FIONBIO, ENOTTY elsewhere.
pub fn ioctl(fd: u64, cmd: u64, arg: u64) -> KResult<u64> {
    let f = fd_file(fd)?;
    if cmd == 0x5421 {
        // FIONBIO
        let on = uaccess::read_u32(arg)? != 0;
        let fl = f.flags();
        f.set_flags(if on {
            fl | file::O_NONBLOCK
        } else {
            fl & !file::O_NONBLOCK
        });
        return Ok(0);
    }
    match &f.kind {
        Kind::Tty => crate::fs::tty::ioctl(cmd, arg),
        // FIONREAD (SIOCINQ): bytes readable now.
        Kind::Socket(s) if cmd == 0x541b => {
            uaccess::write_u32(arg, s.readable_len() as u32).map(|()| 0)
        }
        Kind::Block(d) => crate::block::ioctl(d, cmd, arg),
        // The interface requests (SIOCGIF*), on any socket.
        Kind::Socket(_) => crate::net::ifreq::ioctl(cmd, arg).unwrap_or(Err(Errno::ENOTTY)),
        _ => Err(Errno::ENOTTY),
    }
}

fn put_stat(st: &Stat, buf: u64) -> KResult<u64> {
    uaccess::copy_out(buf, &vfs::layout::encode_stat(st))?;
    Ok(0)
}

/// fstat(2).
pub fn fstat(fd: u64, buf: u64) -> KResult<u64> {
    let f = fd_file(fd)?;
    put_stat(&file_stat(&f)?, buf)
}

/// newfstatat(2), stat(2), lstat(2).
pub fn fstatat(dirfd: i64, path: u64, buf: u64, flags: u64) -> KResult<u64> {
    let p = uaccess::read_cstr(path, PATH_MAX)?;
    if p.is_empty() {
        if flags & AT_EMPTY_PATH != 0 {
            return fstat(dirfd as u64, buf);
        }
        return Err(Errno::ENOENT);
    }
    let n = resolve(dirfd, &p, flags & AT_SYMLINK_NOFOLLOW == 0)?;
    put_stat(&stat_node(&n)?, buf)
}

/// statx(2).
pub fn statx(dirfd: i64, path: u64, flags: u64, mask: u64, buf: u64) -> KResult<u64> {
    let p = uaccess::read_cstr(path, PATH_MAX)?;
    let st = if p.is_empty() && flags & AT_EMPTY_PATH != 0 {
        file_stat(&*fd_file(dirfd as u64)?)?
    } else {
        if p.is_empty() {
            return Err(Errno::ENOENT);
        }
        stat_node(&resolve(dirfd, &p, flags & AT_SYMLINK_NOFOLLOW == 0)?)?
    };
    let bytes = vfs::layout::encode_statx(&st, mask as u32)?;
    uaccess::copy_out(buf, &bytes)?;
    Ok(0)
}

/// faccessat(2)/faccessat2(2): checked with the real uid and gid (what
/// a set-user-ID program asks: "may my invoker do this?") unless
/// AT_EACCESS; root may do anything but execute a file with no x bit.
pub fn faccessat(dirfd: i64, path: u64, mode: u64, flags: u64) -> KResult<u64> {
    const AT_EACCESS: u64 = 0x200;
    if mode & !7 != 0 || flags & !(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & AT_EACCESS != 0 {
        return faccess_as(dirfd, path, mode, flags, &perm::me());
    }
    // Linux's override_creds: the whole check, the walk's search
    // permission included, runs with fsuid/fsgid set to the real ids.
    let me = current();
    let eff = me.cred();
    let real = Arc::new(crate::proc::cred::Cred {
        fsuid: eff.ruid,
        fsgid: eff.rgid,
        ..(*eff).clone()
    });
    me.replace_cred(real.clone());
    let r = faccess_as(dirfd, path, mode, flags, &real);
    me.replace_cred(eff);
    r
}

fn faccess_as(
    dirfd: i64,
    path: u64,
    mode: u64,
    flags: u64,
    cred: &crate::proc::cred::Cred,
) -> KResult<u64> {
    let p = read_path(path)?;
    let st = if p.is_empty() && flags & AT_EMPTY_PATH != 0 {
        file_stat(&*fd_file(dirfd as u64)?)?
    } else {
        stat_node(&resolve(dirfd, &p, flags & AT_SYMLINK_NOFOLLOW == 0)?)?
    };
    if mode != 0 {
        perm::check(cred, &st, mode as u32)?;
    }
    Ok(0)
}

/// getdents64(2).
pub fn getdents64(fd: u64, buf: u64, len: u64) -> KResult<u64> {
    let f = fd_file(fd)?;
    // Bounded whatever the directory's size: a listing goes out in chunks,
    // the file position remembering where the next one starts.
    let want = (len as usize).min(64 * 1024);
    let mut kbuf = Vec::new();
    kbuf.try_reserve_exact(want).map_err(|_| Errno::ENOMEM)?;
    kbuf.resize(want, 0);
    let mut pos = f.pos.lock();
    let n = match &f.kind {
        Kind::Inode(ino) => {
            let (n, next) =
                kfs::with(|fs| vfs::layout::fill_getdents64(fs, *ino, *pos, &mut kbuf))?;
            *pos = next;
            n
        }
        Kind::ProcDir(entries) => {
            let mut w = vfs::layout::DirentWriter::new(&mut kbuf);
            let mut i = *pos as usize;
            while i < entries.len() {
                let (ino, t, name) = &entries[i];
                if !w.push(*ino, i as u64 + 1, *t, name)? {
                    break;
                }
                i += 1;
            }
            *pos = i as u64;
            w.len()
        }
        Kind::Ext(m, ino) => {
            if m.fs.file_type(*ino)? != FileType::Directory {
                return Err(Errno::ENOTDIR);
            }
            ext_getdents(&f, m, *ino, &mut pos, &mut kbuf)?
        }
        _ => return Err(Errno::ENOTDIR),
    };
    drop(pos);
    uaccess::copy_out(buf, &kbuf[..n])?;
    Ok(n as u64)
}

/// getdents64 of an ext4 directory: from the crate's cursor kept with the
/// open file, so entries unlinked between two calls shift nothing. The
/// position (`d_off`, lseek) counts entries: a seek elsewhere than 0 or
/// the current count walks from the start (exact while the directory does
/// not change).
fn ext_getdents(
    f: &OpenFile,
    m: &Arc<Mount>,
    dir: u32,
    pos: &mut u64,
    kbuf: &mut [u8],
) -> KResult<usize> {
    use crate::fs::ext4::DirCursor;
    let mut saved = f.dir_cursor.lock();
    let mut cursor = match *saved {
        Some((at, c)) if at == *pos => c,
        _ => {
            let mut c = DirCursor::Start;
            let mut left = *pos;
            while left > 0 && c != DirCursor::End {
                let batch = m.fs.read_dir(dir, c, left.min(128) as usize)?;
                if batch.is_empty() {
                    c = DirCursor::End;
                }
                for e in batch {
                    c = e.3;
                    left -= 1;
                }
            }
            c
        }
    };
    let mut w = vfs::layout::DirentWriter::new(kbuf);
    let mut at = *pos;
    'fill: while cursor != DirCursor::End {
        let batch = m.fs.read_dir(dir, cursor, 64)?;
        if batch.is_empty() {
            cursor = DirCursor::End;
        }
        for (ino, t, name, next) in batch {
            if !w.push(ino, at + 1, t, &name)? {
                break 'fill;
            }
            at += 1;
            cursor = next;
        }
    }
    *pos = at;
    *saved = Some((at, cursor));
    Ok(w.len())
}

fn parent_of(dirfd: i64, path: &[u8]) -> KResult<(Ino, Vec<u8>)> {
    if proc_rest(dirfd, path).is_some() {
        return Err(Errno::EACCES);
    }
    let (start, path) = tmpfs_start(dirfd, path, false)?;
    let me = perm::me();
    kfs::with(|fs| fs.lookup_parent_as(Some(&perm::caller(&me)), start, &path))
}

/// mkdirat(2).
/// Where a name is created or removed: a tmpfs directory, or a directory
/// of an ext4 mount.
enum Parent {
    Tmpfs(Ino, Vec<u8>),
    Ext(Arc<Mount>, u32, Vec<u8>),
}

fn parent(dirfd: i64, path: &[u8]) -> KResult<Parent> {
    if let Some((m, dir, name)) = ext_parent(dirfd, path)? {
        return Ok(Parent::Ext(m, dir, name));
    }
    parent_of(dirfd, path).map(|(d, n)| Parent::Tmpfs(d, n))
}

fn is_dot(name: &[u8]) -> bool {
    name == b"." || name == b".."
}

impl Parent {
    /// The directory's attributes (for the permission checks).
    fn dir_stat(&self) -> KResult<Stat> {
        match self {
            Parent::Tmpfs(d, _) => kfs::with(|fs| fs.stat(*d)),
            Parent::Ext(m, d, _) => m.fs.stat(*d),
        }
    }

    /// The attributes of what the name names now, if anything.
    fn entry_stat(&self) -> Option<Stat> {
        match self {
            Parent::Tmpfs(d, n) if !is_dot(n) => {
                kfs::with(|fs| fs.lookup_in(*d, n).and_then(|i| fs.stat(i))).ok()
            }
            Parent::Ext(m, d, n) if !is_dot(n) => match m.fs.walk(*d, n, false, &m.target) {
                Ok(Walk::Ino(i)) => m.fs.stat(i).ok(),
                _ => None,
            },
            _ => None,
        }
    }

    /// That the caller may add a name here (write and search).
    fn may_create(&self) -> KResult<()> {
        perm::may_change_dir(&perm::me(), &self.dir_stat()?)
    }

    /// That the caller may remove (or replace) the name: write and search
    /// on the directory, the sticky-directory rule. A missing name is left
    /// for the operation to report.
    fn may_remove(&self) -> KResult<()> {
        let dir = self.dir_stat()?;
        let me = perm::me();
        match self.entry_stat() {
            Some(victim) => perm::may_delete(&me, &dir, &victim),
            None => perm::may_change_dir(&me, &dir),
        }
    }
}

pub fn mkdirat(dirfd: i64, path: u64, mode: u64) -> KResult<u64> {
    let p = read_path(path)?;
    let par = parent(dirfd, &p)?;
    if par.entry_stat().is_some() {
        return Err(Errno::EEXIST);
    }
    par.may_create()?;
    let mode = (mode as u32 & 0o7777) & !current().fs.lock().umask;
    let (dir, name) = match par {
        Parent::Tmpfs(d, n) => (d, n),
        Parent::Ext(m, d, n) => {
            if is_dot(&n) {
                return Err(Errno::EEXIST);
            }
            return m.fs.mkdir(d, &n, mode).map(|()| 0);
        }
    };
    kfs::with(|fs| fs.mkdir(dir, &name, mode)).map(|_| 0)
}

/// mknodat(2): FIFOs and regular files; device nodes need CAP_MKNOD.
pub fn mknodat(dirfd: i64, path: u64, mode: u64, rdev: u64) -> KResult<u64> {
    let p = read_path(path)?;
    let par = parent(dirfd, &p)?;
    if par.entry_stat().is_some() {
        return Err(Errno::EEXIST);
    }
    par.may_create()?;
    // Device nodes need CAP_MKNOD.
    let kind = mode as u32 & 0o170000;
    if (kind == 0o020000 || kind == 0o060000) && !perm::me().privileged() {
        return Err(Errno::EPERM);
    }
    let (dir, name) = match par {
        Parent::Tmpfs(d, n) => (d, n),
        Parent::Ext(m, d, n) => {
            if is_dot(&n) {
                return Err(Errno::EEXIST);
            }
            // Regular files only on a disk for now.
            if mode as u32 & 0o170000 != 0 && mode as u32 & 0o170000 != 0o100000 {
                return Err(Errno::ENOSYS);
            }
            let umask = current().fs.lock().umask;
            return m.fs.create(d, &n, mode as u32 & 0o7777 & !umask).map(|_| 0);
        }
    };
    let umask = current().fs.lock().umask;
    let m = mode as u32;
    kfs::with(|fs| {
        fs.mknod(
            dir,
            &name,
            (m & 0o170000) | ((m & 0o7777) & !umask),
            rdev as u32,
        )
    })
    .map(|_| 0)
}

/// unlinkat(2), unlink(2), rmdir(2).
pub fn unlinkat(dirfd: i64, path: u64, flags: u64) -> KResult<u64> {
    let p = read_path(path)?;
    let par = parent(dirfd, &p)?;
    par.may_remove()?;
    let (dir, name) = match par {
        Parent::Tmpfs(d, n) => (d, n),
        Parent::Ext(m, d, n) => {
            if is_dot(&n) {
                return Err(Errno::EINVAL);
            }
            return m.fs.unlink(d, &n, flags & AT_REMOVEDIR != 0).map(|()| 0);
        }
    };
    if flags & AT_REMOVEDIR != 0 {
        kfs::with(|fs| fs.rmdir(dir, &name)).map(|_| 0)
    } else {
        kfs::with(|fs| fs.unlink(dir, &name)).map(|_| 0)
    }
}

/// renameat2(2) without flags.
pub fn renameat(olddir: i64, old: u64, newdir: i64, new: u64) -> KResult<u64> {
    let (o, n) = (read_path(old)?, read_path(new)?);
    let (op, np) = (parent(olddir, &o)?, parent(newdir, &n)?);
    op.may_remove()?;
    np.may_remove()?;
    match (op, np) {
        (Parent::Tmpfs(od, on), Parent::Tmpfs(nd, nn)) => {
            kfs::with(|fs| fs.rename(od, &on, nd, &nn)).map(|_| 0)
        }
        (Parent::Ext(m, od, on), Parent::Ext(m2, nd, nn)) if Arc::ptr_eq(&m, &m2) => {
            if is_dot(&on) || is_dot(&nn) {
                return Err(Errno::EINVAL);
            }
            m.fs.rename(od, &on, nd, &nn).map(|()| 0)
        }
        _ => Err(Errno::EXDEV),
    }
}

/// linkat(2).
pub fn linkat(olddir: i64, old: u64, newdir: i64, new: u64) -> KResult<u64> {
    let (o, n) = (read_path(old)?, read_path(new)?);
    let (target, np) = (resolve(olddir, &o, false)?, parent(newdir, &n)?);
    np.may_create()?;
    match (target, np) {
        (Node::Ino(target), Parent::Tmpfs(nd, nn)) => {
            kfs::with(|fs| fs.link(nd, &nn, target)).map(|_| 0)
        }
        (Node::Ext(m, target), Parent::Ext(m2, nd, nn)) if Arc::ptr_eq(&m, &m2) => {
            if is_dot(&nn) {
                return Err(Errno::EEXIST);
            }
            m.fs.link(target, nd, &nn).map(|()| 0)
        }
        _ => Err(Errno::EXDEV),
    }
}

/// symlinkat(2).
pub fn symlinkat(target: u64, newdir: i64, path: u64) -> KResult<u64> {
    let t = read_path(target)?;
    let p = read_path(path)?;
    let par = parent(newdir, &p)?;
    if par.entry_stat().is_some() {
        return Err(Errno::EEXIST);
    }
    par.may_create()?;
    match par {
        Parent::Tmpfs(dir, name) => kfs::with(|fs| fs.symlink(dir, &name, &t)).map(|_| 0),
        Parent::Ext(m, dir, name) => {
            if is_dot(&name) {
                return Err(Errno::EEXIST);
            }
            m.fs.symlink(dir, &name, &t).map(|()| 0)
        }
    }
}

/// readlinkat(2); /proc/self, /proc/self/exe and /proc/PID/exe too.
pub fn readlinkat(dirfd: i64, path: u64, buf: u64, len: u64) -> KResult<u64> {
    let p = read_path(path)?;
    if (len as i64) <= 0 {
        return Err(Errno::EINVAL);
    }
    let target: Vec<u8> = match resolve(dirfd, &p, false)? {
        Node::Ino(i) => kfs::with(|fs| fs.readlink(i))?,
        Node::Proc(rest) if rest == b"/self" => alloc::format!("{}", current().tgid).into_bytes(),
        Node::Proc(rest) => match procfs::fd_link(&rest) {
            Some(f) => procfs::fd_link_target(&f),
            None => proc_exe_target(dirfd, &p).ok_or(Errno::EINVAL)?,
        },
        Node::Fd(_) => return Err(Errno::EINVAL),
        Node::Ext(m, i) => m.fs.readlink(i)?,
    };
    let n = target.len().min(len as usize);
    uaccess::copy_out(buf, &target[..n])?;
    Ok(n as u64)
}

/// chdir(2).
pub fn chdir(path: u64) -> KResult<u64> {
    let p = read_path(path)?;
    let node = resolve(AT_FDCWD, &p, true)?;
    if matches!(node, Node::Ino(_) | Node::Ext(..)) {
        perm::check(&perm::me(), &stat_node(&node)?, vfs::access::MAY_EXEC)?;
    }
    let dir = match node {
        Node::Ino(ino) => Dir::Tmpfs(ino),
        // /proc itself (top and ps chdir there and open "PID/stat"): the
        // cwd is the tmpfs directory it is mounted on, and relative paths
        // from it are /proc paths (proc_rest).
        Node::Proc(rest) if rest.is_empty() => {
            Dir::Tmpfs(kfs::with(|fs| fs.lookup(ROOT_INO, b"/proc", true))?)
        }
        Node::Proc(_) => return Err(Errno::ENOTDIR),
        Node::Fd(f) => file_dir(&f)?,
        Node::Ext(m, i) => Dir::Ext(m, i),
    };
    set_cwd(dir)
}

/// The directory an open file is, as a start directory.
fn file_dir(f: &OpenFile) -> KResult<Dir> {
    match &f.kind {
        Kind::Ext(m, i) => Ok(Dir::Ext(m.clone(), *i)),
        _ => f.ino().map(Dir::Tmpfs).ok_or(Errno::ENOTDIR),
    }
}

/// Makes directory `dir` the cwd (ENOTDIR for anything else).
fn set_cwd(dir: Dir) -> KResult<u64> {
    let ft = match &dir {
        Dir::Tmpfs(i) => kfs::with(|fs| fs.file_type(*i))?,
        Dir::Ext(m, i) => m.fs.file_type(*i)?,
    };
    if ft != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    let new = Cwd::new(dir);
    let old = core::mem::replace(&mut current().fs.lock().cwd, new);
    // Not under the lock: the last reference to an ext4 cwd may free an
    // orphaned directory on the disk.
    drop(old);
    Ok(0)
}

/// fchdir(2).
pub fn fchdir(fd: u64) -> KResult<u64> {
    let f = fd_file(fd)?;
    if matches!(f.kind, Kind::Inode(_) | Kind::Ext(..)) {
        perm::check(&perm::me(), &file_stat(&f)?, vfs::access::MAY_EXEC)?;
    }
    set_cwd(file_dir(&f)?)
}

/// getcwd(2): ENOENT once the directory was removed.
pub fn getcwd(buf: u64, size: u64) -> KResult<u64> {
    let cwd = current().fs.lock().cwd.dir();
    let mut p = cwd.path()?;
    p.push(0);
    if p.len() as u64 > size {
        return Err(Errno::ERANGE);
    }
    uaccess::copy_out(buf, &p)?;
    Ok(p.len() as u64)
}

/// umask(2).
pub fn umask(mask: u64) -> KResult<u64> {
    let me = current();
    let mut fs = me.fs.lock();
    let old = fs.umask;
    fs.umask = mask as u32 & 0o777;
    Ok(old as u64)
}

/// fchmodat(2).
pub fn fchmodat(dirfd: i64, path: u64, mode: u64) -> KResult<u64> {
    let p = read_path(path)?;
    let node = resolve(dirfd, &p, true)?;
    chmod_node(node, mode as u32)
}

/// chmod of a resolved name or an open file: owner or root only.
fn chmod_node(node: Node, mode: u32) -> KResult<u64> {
    let me = perm::me();
    match node {
        Node::Ino(ino) => {
            let mode = perm::chmod_mode(&me, &kfs::with(|fs| fs.stat(ino))?, mode)?;
            kfs::with(|fs| fs.chmod(ino, mode)).map(|_| 0)
        }
        Node::Ext(m, i) => {
            let mode = perm::chmod_mode(&me, &m.fs.stat(i)?, mode)?;
            m.fs.chmod(i, mode).map(|()| 0)
        }
        _ => Err(Errno::EPERM),
    }
}

/// fchmod(2).
pub fn fchmod(fd: u64, mode: u64) -> KResult<u64> {
    let f = fd_file(fd)?;
    let node = match &f.kind {
        Kind::Ext(m, i) => Node::Ext(m.clone(), *i),
        _ => Node::Ino(f.ino().ok_or(Errno::EPERM)?),
    };
    chmod_node(node, mode as u32)
}

/// fchownat(2).
pub fn fchownat(dirfd: i64, path: u64, uid: u64, gid: u64) -> KResult<u64> {
    let p = read_path(path)?;
    let id = |v: u64| {
        if v as u32 == u32::MAX {
            None
        } else {
            Some(v as u32)
        }
    };
    let node = resolve(dirfd, &p, true)?;
    let (uid, gid) = (id(uid), id(gid));
    if matches!(node, Node::Ino(_) | Node::Ext(..)) {
        perm::may_chown(&perm::me(), &stat_node(&node)?, uid, gid)?;
    }
    match node {
        Node::Ino(ino) => kfs::with(|fs| fs.chown(ino, uid, gid)).map(|_| 0),
        Node::Ext(m, i) => m.fs.chown(i, uid, gid).map(|()| 0),
        _ => Err(Errno::EPERM),
    }
}

/// utimensat(2): NULL times means now; UTIME_NOW/UTIME_OMIT honoured.
pub fn utimensat(dirfd: i64, path: u64, times: u64, flags: u64) -> KResult<u64> {
    let node = if path == 0 {
        let f = fd_file(dirfd as u64)?;
        match &f.kind {
            Kind::Ext(m, i) => Node::Ext(m.clone(), *i),
            _ => Node::Ino(f.ino().ok_or(Errno::EBADF)?),
        }
    } else {
        let p = read_path(path)?;
        match resolve(dirfd, &p, flags & AT_SYMLINK_NOFOLLOW == 0)? {
            Node::Fd(f) => Node::Ino(f.ino().ok_or(Errno::EPERM)?),
            Node::Proc(_) => return Err(Errno::EPERM),
            n => n,
        }
    };
    let now = kfs::now();
    let (a, m) = if times == 0 {
        (Some(now), Some(now))
    } else {
        let b = uaccess::read_vec(times, 32)?;
        let ts = |o: usize| {
            let sec = i64::from_le_bytes(b[o..o + 8].try_into().unwrap_or([0; 8]));
            let nsec = i64::from_le_bytes(b[o + 8..o + 16].try_into().unwrap_or([0; 8]));
            match nsec {
                0x3fff_fffe => None,      // UTIME_OMIT
                0x3fff_ffff => Some(now), // UTIME_NOW
                n => Some(vfs::Timespec {
                    sec,
                    nsec: n as u32,
                }),
            }
        };
        (ts(0), ts(16))
    };
    // Setting both to now needs ownership or write permission; any other
    // change, ownership (utimensat(2), "Permissions requirements").
    let only_now = times == 0 || (a == Some(now) && m == Some(now));
    let st = stat_node(&node)?;
    let me = perm::me();
    if only_now {
        perm::owner(&me, &st).or_else(|_| perm::check(&me, &st, vfs::access::MAY_WRITE))?;
    } else if a.is_some() || m.is_some() {
        perm::owner(&me, &st)?;
    }
    match node {
        Node::Ext(mnt, i) => mnt.fs.utimes(i, a, m).map(|()| 0),
        Node::Ino(ino) => kfs::with(|fs| fs.utimes(ino, a, m)).map(|_| 0),
        _ => Err(Errno::EPERM),
    }
}

/// truncate(2).
pub fn truncate(path: u64, len: u64) -> KResult<u64> {
    let p = read_path(path)?;
    let node = resolve(AT_FDCWD, &p, true)?;
    if matches!(node, Node::Ino(_) | Node::Ext(..)) {
        perm::check(&perm::me(), &stat_node(&node)?, vfs::access::MAY_WRITE)?;
    }
    let ino = match node {
        Node::Ino(ino) => ino,
        Node::Ext(m, i) => {
            crate::proc::limits::check_size(len)?;
            return m.fs.truncate(i, len).map(|()| 0);
        }
        _ => return Err(Errno::EACCES),
    };
    crate::proc::limits::check_size(len)?;
    kfs::with(|fs| fs.truncate(ino, len)).map(|_| 0)
}

/// ftruncate(2).
pub fn ftruncate(fd: u64, len: u64) -> KResult<u64> {
    let f = fd_file(fd)?;
    if !f.writable() {
        return Err(Errno::EINVAL);
    }
    if let Kind::Ext(m, i) = &f.kind {
        crate::proc::limits::check_size(len)?;
        return m.fs.truncate(*i, len).map(|()| 0);
    }
    let ino = f.ino().ok_or(Errno::EINVAL)?;
    crate::proc::limits::check_size(len)?;
    kfs::with(|fs| fs.truncate(ino, len)).map(|_| 0)
}

/// fsync(2), and fdatasync(2) with `datasync` ([`OpenFile::sync`]);
/// EBADF for a closed descriptor.
pub fn fsync(fd: u64, datasync: bool) -> KResult<u64> {
    fd_file(fd)?.sync(datasync).map(|()| 0)
}

/// syncfs(2): every disk is flushed (one file system per disk at most).
pub fn syncfs(fd: u64) -> KResult<u64> {
    fd_file(fd)?;
    mount::sync_all();
    Ok(0)
}

/// statfs(2): an ext4 mount's own figures for a path in it; the tmpfs
/// root's for the rest (/proc included).
pub fn statfs(path: u64, buf: u64) -> KResult<u64> {
    let p = read_path(path)?;
    let node = resolve(AT_FDCWD, &p, true)?;
    let m = match node {
        Node::Ext(m, _) => Some(m),
        Node::Fd(f) => match &f.kind {
            Kind::Ext(m, _) => Some(m.clone()),
            _ => None,
        },
        _ => None,
    };
    put_statfs(m.as_deref(), buf)
}

/// fstatfs(2), as statfs(2) for the file's file system.
pub fn fstatfs(fd: u64, buf: u64) -> KResult<u64> {
    let f = fd_file(fd)?;
    match &f.kind {
        Kind::Ext(m, _) => put_statfs(Some(m), buf),
        _ => put_statfs(None, buf),
    }
}

fn put_statfs(m: Option<&Mount>, buf: u64) -> KResult<u64> {
    let b = match m {
        Some(m) => vfs::layout::encode_statfs_info(&m.fs.statfs()),
        None => vfs::layout::encode_statfs(&kfs::with(|fs| fs.usage()), 0, 0),
    };
    uaccess::copy_out(buf, &b)?;
    Ok(0)
}

/// sendfile(2)'s staging buffer: small, as Linux's pipe-sized splice,
/// so a socket that takes a little at a time costs a little each call.
const SENDFILE_CHUNK: usize = 64 * 1024;

/// sendfile(2): copies through a kernel buffer, chunk by chunk, until
/// `count`, the end of the input, or a short write (a full non-blocking
/// socket). The input offset (`*offp`, or the file's own) advances only
/// by what was written: a socket that takes part of a chunk must not lose
/// the rest.
pub fn sendfile(out_fd: u64, in_fd: u64, offp: u64, count: u64) -> KResult<u64> {
    let (o, i) = (fd_file(out_fd)?, fd_file(in_fd)?);
    if !i.readable() || !o.writable() {
        return Err(Errno::EBADF);
    }
    let count = (count as usize).min(IO_CHUNK);
    let mut buf = uaccess::kernel_buf(count.min(SENDFILE_CHUNK))?;
    if !matches!(i.kind, Kind::Inode(_)) && offp == 0 {
        // A stream (pipe, device): what is read is consumed either way.
        let n = i.read(&mut buf)?;
        return o.write(&buf[..n]).map(|w| w as u64);
    }
    let start = if offp != 0 {
        let off = uaccess::read_u64(offp)?;
        if (off as i64) < 0 {
            return Err(Errno::EINVAL);
        }
        off
    } else {
        // Not held across the writes: out_fd may be this same open file.
        *i.pos.lock()
    };
    let mut sent = 0usize;
    let result = loop {
        let want = (count - sent).min(buf.len());
        if want == 0 {
            break Ok(());
        }
        let n = match i.pread(&mut buf[..want], start + sent as u64) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) => break Err(e),
        };
        match o.write(&buf[..n]) {
            Ok(w) => {
                sent += w;
                if w < n {
                    break Ok(());
                }
            }
            Err(e) => break Err(e),
        }
    };
    if sent == 0 {
        result?;
    }
    if offp != 0 {
        uaccess::write_u64(offp, start + sent as u64)?;
    } else {
        *i.pos.lock() = start + sent as u64;
    }
    Ok(sent as u64)
}
