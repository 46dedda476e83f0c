//! The file execve loads: a tmpfs inode (its segments map the tmpfs's
//! own frames, page by page) or a file of a mounted ext4 disk (read whole
//! and copied in at exec; its pages are not mapped from the disk's page
//! cache yet).

use abi::{Errno, KResult};
use alloc::sync::Arc;
use alloc::vec::Vec;
use vfs::{Ino, Stat};

use crate::fs::file::Kind;
use crate::fs::mount::Mount;
use crate::syscall::fs::Node;

pub enum Prog {
    Tmpfs(Ino),
    Ext(Arc<Mount>, u32),
}

impl Prog {
    /// The file `path` names from `dirfd`, symlinks followed (EACCES for
    /// what is no file: /proc entries, pipes).
    pub fn find(dirfd: i64, path: &[u8]) -> KResult<Prog> {
        match crate::syscall::fs::resolve(dirfd, path, true)? {
            Node::Ino(i) => Ok(Prog::Tmpfs(i)),
            Node::Ext(m, i) => Ok(Prog::Ext(m, i)),
            Node::Fd(f) => match &f.kind {
                Kind::Inode(i) => Ok(Prog::Tmpfs(*i)),
                Kind::Ext(m, i) => Ok(Prog::Ext(m.clone(), *i)),
                _ => Err(Errno::EACCES),
            },
            Node::Proc(_) => Err(Errno::EACCES),
        }
    }

    pub fn stat(&self) -> KResult<Stat> {
        match self {
            Prog::Tmpfs(i) => crate::fs::with(|fs| fs.stat(*i)),
            Prog::Ext(m, i) => m.fs.stat(*i),
        }
    }

    /// Fills `buf` from `off` as far as the file goes.
    pub fn read(&self, off: u64, buf: &mut [u8]) -> KResult<usize> {
        match self {
            Prog::Tmpfs(i) => crate::fs::read_inode(*i, off, buf),
            Prog::Ext(m, i) => {
                let mut done = 0;
                while done < buf.len() {
                    let n = m.fs.read(*i, off + done as u64, &mut buf[done..])?;
                    if n == 0 {
                        break;
                    }
                    done += n;
                }
                Ok(done)
            }
        }
    }

    /// The whole file (ENOMEM when the heap cannot hold it: a user
    /// chooses the file's size).
    pub fn read_all(&self) -> KResult<Vec<u8>> {
        let size = usize::try_from(self.stat()?.size).map_err(|_| Errno::ENOMEM)?;
        let mut v = Vec::new();
        v.try_reserve_exact(size).map_err(|_| Errno::ENOMEM)?;
        v.resize(size, 0);
        let n = self.read(0, &mut v)?;
        v.truncate(n);
        Ok(v)
    }
}
