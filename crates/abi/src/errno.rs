//! Error numbers: a syscall fails by returning `-errno` in rax.

use linux_raw_sys::errno as e;

/// A Linux error number (positive, as in `errno.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Errno(pub u16);

/// Result of a kernel operation that fails with an errno.
pub type KResult<T> = Result<T, Errno>;

macro_rules! errnos {
    ($($name:ident),* $(,)?) => {
        impl Errno {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                pub const $name: Errno = Errno(e::$name as u16);
            )*
        }
    };
}

errnos!(
    EPERM,
    ENOENT,
    ESRCH,
    EINTR,
    EIO,
    ENXIO,
    E2BIG,
    ENOEXEC,
    ELIBBAD,
    EBADF,
    ECHILD,
    EAGAIN,
    ENOMEM,
    EACCES,
    EFAULT,
    EBUSY,
    EEXIST,
    EXDEV,
    ENODEV,
    ENOTDIR,
    EISDIR,
    EINVAL,
    ENFILE,
    EMFILE,
    ENOTTY,
    ETXTBSY,
    EFBIG,
    ENOSPC,
    ESPIPE,
    EROFS,
    EMLINK,
    EPIPE,
    EDOM,
    ERANGE,
    EDEADLK,
    ENAMETOOLONG,
    ENOLCK,
    ENOSYS,
    ENOTEMPTY,
    ELOOP,
    ENODATA,
    EOVERFLOW,
    ENOTSOCK,
    EOPNOTSUPP,
    ETIMEDOUT,
    ECONNREFUSED,
    ECANCELED,
    // Sockets (errno.h's networking block).
    EDESTADDRREQ,
    EMSGSIZE,
    EPROTOTYPE,
    ENOPROTOOPT,
    EPROTONOSUPPORT,
    ESOCKTNOSUPPORT,
    EAFNOSUPPORT,
    EADDRINUSE,
    EADDRNOTAVAIL,
    ECONNRESET,
    ENOBUFS,
    EISCONN,
    ENOTCONN,
    ETOOMANYREFS,
    EALREADY,
    EINPROGRESS,
    ENETDOWN,
    ENETUNREACH,
    ECONNABORTED,
    EHOSTUNREACH,
    EUCLEAN,
    ENOTBLK,
    EDQUOT,
);

impl Errno {
    /// Syscall returns at or above this are `-errno` (Linux's MAX_ERRNO,
    /// 4095, which is also how libc tells an error from a value).
    pub const MAX_RETURN_FLOOR: u64 = (-4095i64) as u64;

    /// The value a syscall returns for this error: `-errno` as u64.
    pub fn as_return(self) -> u64 {
        (-(self.0 as i64)) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_match_linux() {
        assert_eq!(Errno::EPERM.0, 1);
        assert_eq!(Errno::ENOENT.0, 2);
        assert_eq!(Errno::EFAULT.0, 14);
        assert_eq!(Errno::ENOSYS.0, 38);
        assert_eq!(Errno::ENOSYS.as_return(), (-38i64) as u64);
    }
}
